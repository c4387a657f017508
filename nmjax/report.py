"""Static HTML report of a decode output: DIR/report/index.html (works from a file:// URL).

Pages: index.html (first the grammars and motifs of the model ranked by the neurons carrying
them, per layer, with their logos; then the run, matching settings and per-layer overview with
the conact-vs-act scatter and a neuron table), layer{L}/neuron{N}.html (`nmjax.neuron_page`) and
hits.html (every database hit, sortable and filterable by TF name). Everything is inline: CSS,
SVG logos and a few lines of JS; no network access. Reads only the decode files and the
outputs of `match`, `grammar` and `diagnose`.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from html import escape
from pathlib import Path

import numpy as np

from .clusters import DictionaryConfig, tied_names
from .diagnose import diagnose_run
from .fileio import write_text
from .grammar import grammar_run
from .html import HITS_JS, fmt, page, row, scatter_svg
from .logo import logo_svg
from .matching import (Match, TomtomConfig, describe, match_layer,
                       read_matches, warn_if_few_targets)
from .motifdb import DEFAULT_RELEASE, load_motif_db
from .neuron_page import DISCOVERED_Q, neuron_page
from .runfolder import (decoded_layers, layer_dir, neuron_page_path, parse_ppm_name, read_neurons,
                        read_ppms, read_run)
from .validation import validation_section_html

MAX_TFS_LISTED = 6    # TF names per neuron in the overview table
HIT_Q = 0.1           # a neuron "matches" (method-notes §4): pairs listed on the hits page
SHOWN = 8             # grammars / motifs per layer on the first screen (the rest folded)


def _neuron_link(layer: int, neuron: int) -> str:
    return f'<a href="{neuron_page_path(layer, neuron)}">{neuron}</a>'


def _links(layer: int, neurons: list[int], shares: dict | None = None) -> str:
    """Links to the neurons' pages, each followed by its share in `shares` (neuron -> share)."""
    shares = shares or {}
    return ", ".join(_neuron_link(layer, n)
                     + (f" ({shares[str(n)]:.0%})" if str(n) in shares else "")
                     for n in neurons) or "-"


def headline(summary: dict) -> str:
    """One line per grammar that is some neuron's line, across layers (deepest first), ranked
    by the neurons carrying it, then by the weight it holds in the neurons whose line it is
    (printed after each neuron): what a biologist reads first."""
    found: dict[str, dict] = {}
    for layer in sorted(summary, key=int, reverse=True):
        for g in summary[layer]["grammars"]:
            if g["line"]:
                item = found.setdefault(g["key"], {"text": g["text"], "layers": [], "n": 0,
                                                   "carried": 0, "share": 0.0})
                shares = g.get("shares", {})
                item["layers"].append((int(layer), g["line"], shares))
                item["n"] += len(g["line"])
                item["carried"] += len(g["carried"])
                item["share"] += sum(shares.get(str(n), 0.0) for n in g["line"])
    if not found:
        return "<p>No neuron's line holds two or more motifs.</p>"
    # most neurons first (holding it, then whose line it is, then its weight there);
    # grammars of novel motifs last
    items = sorted(found.values(), key=lambda x: ("novel:" in x["text"], -x["carried"], -x["n"],
                                                  -x["share"], x["text"]))
    return "<ul>" + "".join(
        f'<li><b class="grammar">{escape(x["text"])}</b> (' + "; ".join(
            f"layer {l}: neuron{'s' if len(ns) > 1 else ''} {_links(l, ns, sh)}"
            for l, ns, sh in x["layers"])
        + ")</li>" for x in items) + "</ul>"


def _folded(rows: list[str], head: str) -> str:
    shown = "<table class='summary'>" + head + "".join(rows[:SHOWN]) + "</table>"
    if len(rows) <= SHOWN:
        return shown
    return (shown + f"<details><summary>{len(rows) - SHOWN} more</summary><table class='summary'>"
            + head + "".join(rows[SHOWN:]) + "</table></details>")


def _spacing_links(out_dir: Path, layer: int, neurons: list[int]) -> str:
    """Links to the spacing scans (`nmjax space`) run for these neurons, if any."""
    folder = layer_dir(out_dir, layer) / "spacing"
    files = [f for n in neurons for f in sorted(folder.glob(f"*_neuron{n}_*.svg"))]
    return "".join(f'<br><a href="../{f.relative_to(out_dir).as_posix()}">spacing scan: '
                   f"{escape(f.stem)}</a>" for f in files)


def layer_summary_html(out_dir: Path, layer: int, s: dict) -> str:
    """A layer's grammars and motifs ranked by neurons, with logos and links (with its strands
    where two grammars read the same)."""
    texts = [g["text"] for g in s["grammars"]]
    g_rows = [row(f"<code>{escape(g['text'])}</code>"
                  + (f" (strands {' '.join(g['strands'])})" if texts.count(g["text"]) > 1 else "")
                  + _spacing_links(out_dir, layer, g["carried"]),
                  logo_svg(np.array(g["ppm"]), 6, 30) if g.get("ppm") else "-",
                  f"{len(g['line'])}: {_links(layer, g['line'])}",
                  f"{len(g['carried'])}: {_links(layer, g['carried'])}") for g in s["grammars"]]
    m_rows = [row(f"<b>{escape(m['name'])}</b>", logo_svg(np.array(m["ppm"]), 7, 30),
                  escape(", ".join(m["ties"][1:])) or "-", f"{len(m['line'])}: {_links(layer, m['line'])}",
                  f"{len(m['carried'])}: {_links(layer, m['carried'])}") for m in s["motifs"]]
    out = [f"<h3>Layer {layer}</h3>"]
    if g_rows:
        out.append(_folded(g_rows, row("grammar", "logo (most common spacing)", "line of neurons",
                                       "in &ge; 20% of the weight of neurons", head=True)))
    if m_rows:
        out.append(_folded(m_rows, row("motif", "logo", "paralogs tied with it (-log10 p within 10%)",
                                       "line of neurons",
                                       "in &ge; 20% of the weight of neurons", head=True)))
    if not (g_rows or m_rows):
        out.append("<p>no motif</p>")
    return "".join(out)


def summary_section(out_dir: Path) -> str:
    """The first screen: the model's grammars, then per layer its grammars and motifs."""
    path = out_dir / "grammars.json"
    if not path.is_file():
        return ""
    summary = json.loads(path.read_text())["layers"]
    return ("<h2>Grammars the model encodes</h2>" + headline(summary)
            + "<p class='muted'>A neuron's line is the longest order of motifs held by at least "
              "half the weight (n x act) of the decoupled PPMs holding its least shared motif "
              "(and by a quarter of all at least); gaps are the bp between the "
              "database matrices, soft gaps a robust range; after each neuron, the share of "
              "its weight the grammar holds. Each layer lists its grammars (2+ "
              "motifs) and motifs ranked by the neurons whose line they are and the neurons "
              "where they hold at least 20% of the weight.</p>"
            + "".join(layer_summary_html(out_dir, int(l), summary[l])
                      for l in sorted(summary, key=int, reverse=True)))


def tf_groups(found: list[Match]) -> list[str]:
    """Per matched motif, its best TF named with its paralog ties (dictionary.tied_names, e.g.
    CEBPB/CEBPE); best p first, a group listed only if it adds a TF not listed before."""
    params, by_query = DictionaryConfig(), {}
    for m in found:
        by_query.setdefault(m.query, []).append((m.p_value, m.target_name or m.target))
    listed: set[str] = set()
    out = []
    groups = sorted((min(pairs)[0], tied_names(sorted(pairs), params))
                    for pairs in by_query.values())
    for _, names in groups:
        if not listed.issuperset(names):
            out.append("/".join(sorted(names, key=lambda n: (n.upper(), n))))
            listed.update(names)
    return out


def _layer_section(out_dir: Path, report: Path, layer: int, diag: dict) -> tuple[str, list]:
    """The overview of one layer (writing its neuron pages); returns it and its hits."""
    folder = layer_dir(out_dir, layer)
    rows = read_neurons(folder)
    ppms = read_ppms(folder)
    gpath, mpath = folder / "grammar.json", folder / "matches.tsv"
    grammars = json.loads(gpath.read_text())["neurons"] if gpath.is_file() else {}
    matches = read_matches(mpath) if mpath.is_file() else []
    by_neuron: dict[int, list] = {}
    for m in matches:
        by_neuron.setdefault(parse_ppm_name(m.query)[1], []).append(m)
    status = {n["neuron"]: n["status"] for n in diag["neurons"]}
    c, per = diag["counts"], diag["motifs_per_neuron"]
    out = [f'<h2>Layer {layer}</h2><p>{len(diag["neurons"])} neurons: '
           f'<span class="alive">{c["alive"]} alive</span>, <span class="sick">{c["sick"]} sick'
           f'</span>, <span class="dead">{c["dead"]} dead</span>; {per["mean"]:.2f} motifs per '
           f'neuron (max {per["max"]})</p>{scatter_svg(diag["scatter"], status)}<table>',
           row("neuron", "status", "act", "conact/act", "motifs", "best JASPAR match",
               f"TFs matched at q &lt; {DISCOVERED_Q} (best per motif, ties joined by /), "
               "best first", "grammar line", head=True)]
    for n in diag["neurons"]:
        neuron = n["neuron"]
        found = sorted((m for m in by_neuron.get(neuron, []) if m.q_value < DISCOVERED_Q),
                       key=lambda m: m.p_value)
        best_txt = (f"{escape(found[0].target)} {escape(found[0].target_name)} "
                    f"(q = {fmt(found[0].q_value)})" if found else "-")
        tfs = tf_groups(found)
        tfs_txt = escape(", ".join(tfs[:MAX_TFS_LISTED]) + (", ..." if len(tfs) > MAX_TFS_LISTED
                                                            else "")) or "-"
        link = str(neuron)
        if n["status"] != "dead":
            link = _neuron_link(layer, neuron)
            own = [m for m in ppms if parse_ppm_name(m.name)[1] == neuron]
            html = neuron_page(layer, neuron, own, [r for r in rows if r.neuron == neuron], n,
                               grammars.get(str(neuron)), by_neuron.get(neuron, []),
                               validation_section_html(out_dir, layer, neuron))
            write_text(report / neuron_page_path(layer, neuron), html)
        text = grammars.get(str(neuron), {}).get("text", "")
        out.append(f'<tr><td>{link}</td><td class="{n["status"]}">{n["status"]}</td>'
                   f'<td>{fmt(n["act"])}</td><td>{fmt(n["ratio"])}</td><td>{n["motifs"]}</td>'
                   f"<td>{best_txt}</td><td>{tfs_txt}</td>"
                   f"<td><code>{escape(text or '-')}</code></td></tr>")
    out.append("</table>")
    return "".join(out), [(layer, m) for m in matches if m.q_value < HIT_Q]


def build_report(out_dir: str | os.PathLike) -> Path:
    """Write DIR/report/ from the decode files plus matches.tsv, grammar.json and
    analysis.json where present (`finish_run` writes them; missing ones are left out).
    Diagnostics are recomputed (cheap) so they always match neurons.tsv. The report is built
    in DIR/.report.partial and swapped in whole."""
    out_dir = Path(out_dir)
    final, report, old = out_dir / "report", out_dir / ".report.partial", out_dir / ".report.old"
    shutil.rmtree(report, ignore_errors=True)
    diag = diagnose_run(out_dir)
    analysis_path = out_dir / "analysis.json"
    analysis = json.loads(analysis_path.read_text()) if analysis_path.is_file() else {}
    index = [summary_section(out_dir),
             f"<h2>Run</h2><p>decode output <code>{escape(str(out_dir.resolve()))}</code></p>"]
    if analysis.get("matching"):
        index.append("<h2>Matching</h2><table>" + "".join(
            row(escape(k), escape(str(v))) for k, v in analysis["matching"].items()) + "</table>")
    if (run := read_run(out_dir)) is not None:
        run = json.dumps(run, indent=1)
        index.append(f"<details><summary>run.json</summary><pre>{escape(run)}</pre></details>")
    index.append(f"<p>sick = {escape(diag['definitions']['sick'])}</p>")
    hits = []
    for layer in decoded_layers(out_dir):
        section, layer_hits = _layer_section(out_dir, report, layer, diag["layers"][str(layer)])
        index.append(section)
        hits += layer_hits
    write_text(report / "hits.html", _hits_page(hits))
    write_text(report / "index.html", page("NeuronMotif report", "".join(index), ""))
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    report.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final / "index.html"


def _hits_page(hits: list[tuple[int, Match]]) -> str:
    num = " data-num='1'"
    head = "".join(f"<th{num if n else ''}>{h}</th>" for h, n in (
        ("layer", 0), ("neuron", 1), ("motif", 0), ("matrix", 0), ("TF", 0), ("p", 1), ("E", 1),
        ("q", 1), ("offset", 1), ("strand", 0), ("overlap", 1)))
    rows = []
    for layer, m in hits:
        neuron = parse_ppm_name(m.query)[1]
        rows.append(row(str(layer), _neuron_link(layer, neuron),
                         escape(m.query), escape(m.target), escape(m.target_name),
                         f"{m.p_value:.3g}", f"{m.e_value:.3g}", f"{m.q_value:.3g}", str(m.offset),
                         m.orientation, str(m.overlap)))
    body = ('<p>TF name contains <input id="tf" size="12"> and q &le; <input id="maxq" size="6" '
            f'value="{DISCOVERED_Q}"> : <span id="count"></span> of {len(hits)} hits '
            f"(q &lt; {HIT_Q}) shown; click a column header to sort; a link may preset them: "
            "hits.html#tf=CTCF&amp;q=0.001&amp;sort=7 (column 7 = q).</p>"
            f'<table id="hits"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')
    return page("All database hits", body, "", HITS_JS)


def finish_run(out_dir: str | os.PathLike, motif_db: str | os.PathLike | None = None,
               release: str = DEFAULT_RELEASE, params: TomtomConfig = TomtomConfig()) -> dict:
    """After decoding: match, grammar (and the model summary), diagnose and report for every
    layer of DIR.
    Returns the seconds each step took and the report path; writes DIR/analysis.json."""
    out_dir = Path(out_dir)
    layers = decoded_layers(out_dir)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    db = load_motif_db(motif_db, release)
    warn_if_few_targets(db, motif_db)
    timings["load_motif_db"] = time.perf_counter() - t
    t = time.perf_counter()
    n_matches = {layer: len(match_layer(layer_dir(out_dir, layer), db, params)) for layer in layers}
    timings["match"] = time.perf_counter() - t
    t = time.perf_counter()
    grammar_run(out_dir, db=db, tparams=params)
    timings["grammar"] = time.perf_counter() - t
    t = time.perf_counter()
    diagnose_run(out_dir)
    timings["diagnose"] = time.perf_counter() - t
    analysis = {"matching": describe(params, motif_db, release), "pairs_reported": n_matches,
                "seconds": timings, "report": str(out_dir / "report" / "index.html")}
    write_text(out_dir / "analysis.json", json.dumps(analysis, indent=1))
    t = time.perf_counter()
    build_report(out_dir)
    timings["report"] = time.perf_counter() - t
    write_text(out_dir / "analysis.json", json.dumps(analysis, indent=1))
    return analysis
