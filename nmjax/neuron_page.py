"""The report page of one neuron: its grammar line, its orders ranked by share, its dictionary
of hard motifs, its decoupled PPMs with their sites, and the database matches of its segments."""
from __future__ import annotations

from html import escape

import numpy as np

from .html import fmt, page, row
from .logo import logo_svg
from .matching import Match
from .runfolder import parse_ppm_name

DISCOVERED_Q = 0.01   # "discovered" motif (method-notes §4)
LOGOS = 48            # decoupled PPMs drawn as logos per page (the rest as a table)


def line_summary(line: dict) -> str:
    """`k of m subsets inside its gaps, x % of the neuron's weight` of a grammar line."""
    inside = (f"{line['support']} of {line['of']} subsets containing it lie inside its gaps, "
              if len(line["motifs"]) > 1 else f"in {line['of']} subsets, ")
    return inside + f"{line['share']:.0%} of the neuron's weight (n x act)"


def grammar_section(g: dict) -> str:
    """The line, the ranked orders and the dictionary of a neuron's grammar.json entry."""
    line = g["line"]
    out = [f'<h2>Grammar</h2><p class="grammar">{escape(g["text"])}</p>'
           f"<p>{escape(line_summary(line))}. The line is the longest order held by at least "
           "half the weight of the PPMs holding its least shared motif (where that motif "
           "occurs, it occurs mostly in this order) and by at least a quarter of the weight of "
           "the PPMs with a site.</p>",
           "<h3>Orders, by share of the neuron's weight</h3><table>",
           row("order", "strands", "share", "subsets containing it", "inside its gaps",
               "gaps as decoded (bp: subsets)", head=True)]
    for o in g["orders"]:
        gaps = "; ".join(", ".join(f"{v}: {c}" for v, c in gap["values"].items())
                         for gap in o["gaps"]) or "-"
        out.append(row(f"<code>{escape(o['text'])}</code>", " ".join(o["strands"]),
                       f"{o['share']:.0%}", str(o["of"]), str(o["support"]), escape(gaps)))
    out += ["</table><h3>Dictionary of hard motifs</h3><table>",
            row("id", "name", "PPM (mean of its sites)", "best database match",
                "paralog ties (-log10 p within 10%)", "subsets", "share", head=True)]
    for d in g["dictionary"]:
        m = d["match"]
        match = (f"{escape(m['target'])} {escape(m['target_name'])} ({m['orientation']}), "
                 f"q = {fmt(m['q_value'])}" if m else "no database match at q &lt; 0.01")
        out.append(row(d["id"], f"<b>{escape(d['name'])}</b>", logo_svg(np.array(d["ppm"]), 9, 36),
                       match, escape(", ".join(d["ties"][1:])) or "-", str(d["subsets"]),
                       f"{d['share']:.0%}"))
    return "".join(out) + "</table>"


def neuron_page(layer: int, neuron: int, ppms: list, rows: list, diag: dict, grammar: dict | None,
                matches: list[Match], validation: str = "") -> str:
    """The page; `validation` is the HTML of its scans on real sequences, window swap and
    spacing scans (`nmjax.validation.validation_section_html`), empty if none was run."""
    grammar = grammar or {}
    by_subset = {r.subset: r for r in rows}
    body = [f'<p>status: <b class="{diag["status"]}">{diag["status"]}</b>, '
            f'act {fmt(diag["act"])}, best conact / act {fmt(diag["ratio"])}, '
            f'{diag["subsets"]} decoupled motif(s), {diag["samples"]} samples</p>']
    if grammar.get("text"):
        body.append(grammar_section(grammar))
    sites = grammar.get("sites", {})

    def weight(m):
        r = by_subset.get(parse_ppm_name(m.name)[2])
        return -(r.n * max(r.act, 0.0)) if r else 0.0

    ranked = sorted(ppms, key=weight)
    body.append("<h2>Decoupled motifs (lined up by position in the receptive field, "
                f"heaviest n x act first{f'; logos of the first {LOGOS}' if len(ranked) > LOGOS else ''})"
                "</h2>")
    rest = []
    for k, m in enumerate(ranked):
        subset = parse_ppm_name(m.name)[2]
        r = by_subset.get(subset)
        found = sites.get(str(subset), [])
        if k >= LOGOS:
            rest.append(row(escape(m.name), str(r.n) if r else "-", fmt(r.act) if r else "-",
                            fmt(r.conact) if r else "-", escape(", ".join(
                                f"{s['name']} {s['strand']} {s['start']}-{s['end']}" for s in found))
                            or "-", f"<code>{escape(r.consensus)}</code>" if r else "-"))
            continue
        boxes = [(s["start"], s["end"], f"{s['name']} {s['strand']}") for s in found]
        info = (f"n = {r.n}, act {fmt(r.act)}, conact {fmt(r.conact)}, "
                f"consensus <code>{escape(r.consensus)}</code>" if r else "")
        body.append(f'<div class="ppm"><b>{escape(m.name)}</b> {info}'
                    f"{logo_svg(m.ppm, 8, 44, boxes)}</div>")
    if rest:
        body.append(f"<details><summary>the other {len(rest)} decoupled motifs</summary><table>"
                    + row("PPM", "n", "act", "conact", "sites", "consensus", head=True)
                    + "".join(rest) + "</table></details>")
    found = [x for x in matches if x.q_value < DISCOVERED_Q]
    if found:
        body += [f"<h2>Database matches of its segmented motifs (q &lt; {DISCOVERED_Q})</h2>"
                 "<table>", row("motif", "matrix", "TF", "q", "E", "offset", "strand",
                                "overlap", head=True)]
        body += [row(escape(x.query), escape(x.target), escape(x.target_name), fmt(x.q_value),
                     fmt(x.e_value), str(x.offset), x.orientation, str(x.overlap))
                 for x in found]
        body.append("</table>")
    body.append(validation)
    return page(f"Layer {layer}, neuron {neuron}", "".join(body), "../")
