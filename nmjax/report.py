"""Static HTML report of a decode output: DIR/report/index.html (works from a file:// URL).

Pages: index.html (run, matching settings, per-layer overview with the conact-vs-act scatter
and a neuron table), layer{L}/neuron{N}.html (decoupled motif logos lined up by position, JASPAR
matches, dictionary and grammar) and hits.html (every database hit, sortable and filterable by
TF name). Everything is inline: CSS, SVG logos and a few lines of JS; no network access.
Reads only the decode files and the outputs of `match`, `grammar` and `diagnose`.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from html import escape
from pathlib import Path

import numpy as np

from .diagnose import diagnose_run, parse_ppm_name, read_neurons
from .fileio import write_text
from .grammar import GrammarParams, grammar_layer, tied_names
from .logo import GLYPH_DEFS, logo_svg
from .matching import (Match, TomtomParams, decoded_layers, describe, match_layer, read_layer_motifs,
                       read_matches, warn_if_few_targets)
from .motifdb import DEFAULT_RELEASE, load_motif_db

DISCOVERED_Q = 0.01   # "discovered" motif (method-notes §4); the hits page's default filter
MAX_TFS_LISTED = 6    # TF names per neuron in the overview table
HIT_Q = 0.1           # a neuron "matches" (method-notes §4): pairs listed on the hits page
ORDER_SHARE = 0.1     # an order of this share of a neuron's PPMs is among the layer's grammars

CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}
th{background:#f3f3f3}th.sort{cursor:pointer}code{background:#f6f6f6;padding:0 3px}
.ax{font-size:8px;fill:#666;text-anchor:end}.lab{font-size:10px;fill:#333}
.site{fill:#ffeb3b;fill-opacity:.18;stroke:#c9a800;stroke-width:.8}
.alive{color:#1b7f3b}.sick{color:#c77700}.dead{color:#999}.ppm{margin:.6em 0}
.grammar{font:600 16px monospace}svg.logo{display:block}"""

# Filter rows by TF name (column 4) and max q (column 7); sort on a header click; a URL hash
# tf=NAME&q=0.01&sort=COLUMN presets both.
HITS_JS = """(function(){
var table=document.getElementById('hits'),body=table.tBodies[0],
filter=document.getElementById('tf'),maxq=document.getElementById('maxq'),
count=document.getElementById('count');
function apply(){var f=filter.value.trim().toUpperCase(),q=parseFloat(maxq.value),n=0;
for(var i=0;i<body.rows.length;i++){var r=body.rows[i],
ok=r.cells[4].textContent.toUpperCase().indexOf(f)>=0&&!(parseFloat(r.cells[7].textContent)>q);
r.style.display=ok?'':'none';if(ok)n++;}count.textContent=n;}
var heads=table.tHead.rows[0].cells;
for(var c=0;c<heads.length;c++){(function(c){var asc=true;heads[c].className='sort';
heads[c].onclick=function(){
var rows=Array.prototype.slice.call(body.rows),num=heads[c].getAttribute('data-num')==='1';
rows.sort(function(a,b){var x=a.cells[c].textContent,y=b.cells[c].textContent;
var d=num?parseFloat(x)-parseFloat(y):x.localeCompare(y);return asc?d:-d;});
asc=!asc;rows.forEach(function(r){body.appendChild(r);});};})(c);}
var h=location.hash.slice(1).split('&');
for(var k=0;k<h.length;k++){var kv=h[k].split('=');
if(kv[0]==='tf')filter.value=decodeURIComponent(kv[1]||'');
if(kv[0]==='q')maxq.value=kv[1]||maxq.value;
if(kv[0]==='sort'&&heads[+kv[1]])heads[+kv[1]].onclick();}
filter.oninput=apply;maxq.oninput=apply;apply();})();"""


def _page(title: str, body: str, root: str, script: str = "") -> str:
    nav = (f'<p><a href="{root}index.html">overview</a> | '
           f'<a href="{root}hits.html">all JASPAR hits</a></p>')
    js = f"<script>{script}</script>" if script else ""
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body>{GLYPH_DEFS}{nav}"
            f"<h1>{escape(title)}</h1>{body}{js}</body></html>")


def _fmt(x, digits: int = 3) -> str:
    return "-" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{digits}g}"


def _row(*cells: str, head: bool = False) -> str:
    tag = "th" if head else "td"
    return "<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>"


def scatter_svg(points: list[dict], status: dict[int, str], size: int = 260) -> str:
    """conact (y) vs act (x) of every decoupled subset of a layer, coloured by neuron status."""
    pts = [(p["act"], p["conact"], status.get(p["neuron"], "alive")) for p in points
           if np.isfinite(p["act"]) and np.isfinite(p["conact"])]
    if not pts:
        return "<p>no alive neuron</p>"
    lo = min(0.0, min(min(a, c) for a, c, _ in pts))
    hi = max(max(a, c) for a, c, _ in pts) * 1.05 or 1.0
    pad, mid = 30, size / 2

    def sx(v):
        return pad + (v - lo) / (hi - lo) * (size - pad - 5)

    def sy(v):
        return size - pad - (v - lo) / (hi - lo) * (size - pad - 5)

    colour = {"alive": "#1b7f3b", "sick": "#c77700"}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" role="img">'
           f"<title>conact vs act per decoupled motif</title>"
           f'<path d="M{pad} 5V{size - pad}H{size - 5}" stroke="#888" fill="none"/>'
           f'<path d="M{sx(lo):.1f} {sy(lo):.1f}L{sx(hi):.1f} {sy(hi):.1f}" stroke="#bbb" '
           f'stroke-dasharray="3 3"/>'
           f'<text x="{mid:.0f}" y="{size - 5}" font-size="11" text-anchor="middle">'
           f"act (max f)</text>"
           f'<text x="10" y="{mid:.0f}" font-size="11" text-anchor="middle" '
           f'transform="rotate(-90 10 {mid:.0f})">conact f(consensus)</text>'
           f'<text x="{pad}" y="{size - pad + 12}" font-size="9">{_fmt(lo)}</text>'
           f'<text x="{size - 5}" y="{size - pad + 12}" font-size="9" text-anchor="end">'
           f"{_fmt(hi)}</text>"]
    out += [f'<circle cx="{sx(a):.1f}" cy="{sy(c):.1f}" r="2.5" fill="{colour[s]}" '
            f'fill-opacity=".6"/>' for a, c, s in pts]
    out.append("</svg>")
    return "".join(out)


def _grammar_section(grammar: dict) -> str:
    out = [f'<h2>Grammar</h2><p class="grammar">{escape(grammar["text"])}</p><table>',
           _row("order (strands)", "read on", "subsets", "gaps as read on the PPM (bp: count)",
                head=True)]
    for o in grammar["orders"]:
        gaps = "; ".join(", ".join(f"{g}: {c}" for g, c in gap["values"].items())
                         for gap in o["gaps"])
        out.append(_row(f'<code>{escape(o["text"])}</code> ({" ".join(o["strands"])})',
                        "reverse complement" if o["reverse_complement"] else "PPM strand",
                        ", ".join(map(str, o["subsets"])), escape(gaps) or "-"))
    out += ["</table><h2>Dictionary</h2><table>", _row("id", "logo", "best match", head=True)]
    for d in grammar["dictionary"]:
        m = d["match"]
        label = (f'{escape(m["name"])}: best {escape(m["target"])} {escape(m["target_name"])} '
                 f'({m["orientation"]}), q = {_fmt(m["q_value"])}' if m
                 else "no database match at q &lt; 0.01")
        if d.get("parts"):
            label += "<br>composite: " + ", ".join(
                f'{escape(p["name"])} ({escape(p["target"])}, {p["strand"]}, bp {p["start"]}-'
                f'{p["end"]}, q = {_fmt(p["q_value"])})' for p in d["parts"])
        out.append(_row(d["id"], logo_svg(np.array(d["ppm"]), 9, 36), label))
    return "".join(out) + "</table>"


def _tf_groups(found: list[Match]) -> list[str]:
    """Per matched motif, its best TF named with its paralog ties (grammar.tied_names, e.g.
    CEBPB/CEBPE); best p first, a group listed only if it adds a TF not listed before."""
    params, by_query = GrammarParams(), {}
    for m in found:
        by_query.setdefault(m.query, []).append((m.p_value, m.target_name or m.target))
    listed: set[str] = set()
    out = []
    groups = sorted((min(pairs)[0], tied_names(pairs, params)) for pairs in by_query.values())
    for _, names in groups:
        if not listed.issuperset(names):
            out.append("/".join(names))
            listed.update(names)
    return out


def _grammar_table(grammars: dict, layer: int) -> str:
    """The distinct grammar lines of a layer: the neurons whose one-line grammar it is, and the
    neurons where it is the order of at least ORDER_SHARE of the PPMs with motif sites (a
    dimer a neuron shows in a fifth of its decoupled motifs is not its most common order;
    single-motif orders count only as a one-line grammar)."""
    main: dict[str, list[int]] = {}
    frequent: dict[str, list[int]] = {}
    for neuron, g in grammars.items():
        if g.get("text"):
            main.setdefault(g["text"], []).append(int(neuron))
        for o in g.get("orders", []):
            if (len(o["subsets"]) >= ORDER_SHARE * len(g["sites"])
                    and (len(o["motifs"]) > 1 or o["text"] == g["text"])):
                frequent.setdefault(o["text"], []).append(int(neuron))
    if not frequent:
        return ""

    def links(ns: list[int]) -> str:
        return ", ".join(f'<a href="layer{layer}/neuron{n}.html">{n}</a>' for n in sorted(ns))

    rows = sorted(frequent, key=lambda t: (-len(main.get(t, [])), -len(frequent[t]), t))
    return ("<h3>Grammars of this layer</h3><table>"
            + _row("grammar", "one-line grammar of", f"order of &ge; {ORDER_SHARE:.0%} of the "
                   "PPMs of", head=True)
            + "".join(_row(f"<code>{escape(t)}</code>",
                           f"{len(main.get(t, []))}: {links(main.get(t, []))}",
                           f"{len(frequent[t])}: {links(frequent[t])}") for t in rows)
            + "</table>")


def _neuron_page(layer: int, neuron: int, ppms: list, rows: list, diag: dict,
                 grammar: dict | None, matches: list[Match]) -> str:
    grammar = grammar or {}
    by_subset = {r.subset: r for r in rows}
    names = grammar.get("names", {})
    body = [f'<p>status: <b class="{diag["status"]}">{diag["status"]}</b>, '
            f'act {_fmt(diag["act"])}, best conact / act {_fmt(diag["ratio"])}, '
            f'{diag["subsets"]} decoupled motif(s), {diag["samples"]} samples</p>']
    if grammar.get("text"):
        body.append(_grammar_section(grammar))
    body.append("<h2>Decoupled motifs (lined up by position in the receptive field)</h2>")
    sites = grammar.get("sites", {})
    for m in ppms:
        subset = parse_ppm_name(m.name)[2]
        r = by_subset.get(subset)
        boxes = [(s["start"], s["end"], names.get(s["motif"], s["motif"]))
                 for s in sites.get(str(subset), [])]
        info = (f"n = {r.n}, act {_fmt(r.act)}, conact {_fmt(r.conact)}, "
                f"consensus <code>{escape(r.consensus)}</code>" if r else "")
        body.append(f'<div class="ppm"><b>{escape(m.name)}</b> {info}'
                    f"{logo_svg(m.ppm, 8, 44, boxes)}</div>")
    found = [x for x in matches if x.q_value < DISCOVERED_Q]
    if found:
        body += [f"<h2>Database matches of its segmented motifs (q &lt; {DISCOVERED_Q})</h2>"
                 "<table>", _row("motif", "matrix", "TF", "q", "E", "offset", "strand",
                                 "overlap", head=True)]
        body += [_row(escape(x.query), escape(x.target), escape(x.target_name), _fmt(x.q_value),
                      _fmt(x.e_value), str(x.offset), x.orientation, str(x.overlap))
                 for x in found]
        body.append("</table>")
    return _page(f"Layer {layer}, neuron {neuron}", "".join(body), "../")


def _layer_section(out_dir: Path, report: Path, layer: int, diag: dict) -> tuple[str, list]:
    """The overview of one layer (writing its neuron pages); returns it and its hits."""
    layer_dir = out_dir / f"layer{layer}"
    rows = read_neurons(layer_dir)
    ppms = read_layer_motifs(layer_dir / "ppms.meme")
    gpath, mpath = layer_dir / "grammar.json", layer_dir / "matches.tsv"
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
           f'neuron (max {per["max"]})</p>{scatter_svg(diag["scatter"], status)}'
           f'{_grammar_table(grammars, layer)}<table>',
           _row("neuron", "status", "act", "conact/act", "motifs", "best JASPAR match",
                f"TFs matched at q &lt; {DISCOVERED_Q} (best per motif, ties joined by /), "
                "best first", "grammar", head=True)]
    for n in diag["neurons"]:
        neuron = n["neuron"]
        found = sorted((m for m in by_neuron.get(neuron, []) if m.q_value < DISCOVERED_Q),
                       key=lambda m: m.p_value)
        best_txt = (f"{escape(found[0].target)} {escape(found[0].target_name)} "
                    f"(q = {_fmt(found[0].q_value)})" if found else "-")
        tfs = _tf_groups(found)
        tfs_txt = escape(", ".join(tfs[:MAX_TFS_LISTED]) + (", ..." if len(tfs) > MAX_TFS_LISTED
                                                            else "")) or "-"
        link = str(neuron)
        if n["status"] != "dead":
            link = f'<a href="layer{layer}/neuron{neuron}.html">{neuron}</a>'
            own = [m for m in ppms if parse_ppm_name(m.name)[1] == neuron]
            page = _neuron_page(layer, neuron, own, [r for r in rows if r.neuron == neuron], n,
                                grammars.get(str(neuron)), by_neuron.get(neuron, []))
            write_text(report / f"layer{layer}" / f"neuron{neuron}.html", page)
        text = grammars.get(str(neuron), {}).get("text", "")
        out.append(f'<tr><td>{link}</td><td class="{n["status"]}">{n["status"]}</td>'
                   f'<td>{_fmt(n["act"])}</td><td>{_fmt(n["ratio"])}</td><td>{n["motifs"]}</td>'
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
    analysis_path, run_path = out_dir / "analysis.json", out_dir / "run.json"
    analysis = json.loads(analysis_path.read_text()) if analysis_path.is_file() else {}
    index = [f"<p>decode output <code>{escape(str(out_dir.resolve()))}</code></p>"]
    if analysis.get("matching"):
        index.append("<h2>Matching</h2><table>" + "".join(
            _row(escape(k), escape(str(v))) for k, v in analysis["matching"].items()) + "</table>")
    if run_path.is_file():
        run = json.dumps(json.loads(run_path.read_text()), indent=1)
        index.append(f"<details><summary>run.json</summary><pre>{escape(run)}</pre></details>")
    index.append(f"<p>sick = {escape(diag['definitions']['sick'])}</p>")
    hits = []
    for layer in decoded_layers(out_dir):
        section, layer_hits = _layer_section(out_dir, report, layer, diag["layers"][str(layer)])
        index.append(section)
        hits += layer_hits
    write_text(report / "hits.html", _hits_page(hits))
    write_text(report / "index.html", _page("NeuronMotif report", "".join(index), ""))
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
        rows.append(_row(str(layer), f'<a href="layer{layer}/neuron{neuron}.html">{neuron}</a>',
                         escape(m.query), escape(m.target), escape(m.target_name),
                         f"{m.p_value:.3g}", f"{m.e_value:.3g}", f"{m.q_value:.3g}", str(m.offset),
                         m.orientation, str(m.overlap)))
    body = ('<p>TF name contains <input id="tf" size="12"> and q &le; <input id="maxq" size="6" '
            f'value="{DISCOVERED_Q}"> : <span id="count"></span> of {len(hits)} hits '
            f"(q &lt; {HIT_Q}) shown; click a column header to sort; a link may preset them: "
            "hits.html#tf=CTCF&amp;q=0.001&amp;sort=7 (column 7 = q).</p>"
            f'<table id="hits"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')
    return _page("All database hits", body, "", HITS_JS)


def finish_run(out_dir: str | os.PathLike, motif_db: str | os.PathLike | None = None,
               release: str = DEFAULT_RELEASE, params: TomtomParams = TomtomParams()) -> dict:
    """After decoding: match, grammar, diagnose and report for every layer of DIR.
    Returns the seconds each step took and the report path; writes DIR/analysis.json."""
    out_dir = Path(out_dir)
    layers = decoded_layers(out_dir)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    db = load_motif_db(motif_db, release)
    warn_if_few_targets(db, motif_db)
    timings["load_motif_db"] = time.perf_counter() - t
    t = time.perf_counter()
    n_matches = {layer: len(match_layer(out_dir / f"layer{layer}", db, params)) for layer in layers}
    timings["match"] = time.perf_counter() - t
    t = time.perf_counter()
    for layer in layers:
        grammar_layer(out_dir / f"layer{layer}", db, tparams=params)
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
