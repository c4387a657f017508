"""HTML pieces shared by the report's pages: the page shell, table rows, numbers and the
conact-vs-act scatter plot. Everything is inline (CSS, SVG, a few lines of JS)."""
from __future__ import annotations

from html import escape

import numpy as np

from .logo import GLYPH_DEFS

CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}
th{background:#f3f3f3}th.sort{cursor:pointer}code{background:#f6f6f6;padding:0 3px}
.ax{font-size:8px;fill:#666;text-anchor:end}.lab{font-size:10px;fill:#333}
.site{fill:#ffeb3b;fill-opacity:.18;stroke:#c9a800;stroke-width:.8}
.alive{color:#1b7f3b}.sick{color:#c77700}.dead{color:#999}.ppm{margin:.6em 0}
.grammar{font:600 16px monospace}svg.logo{display:block}
.summary td{vertical-align:middle}.muted{color:#777}"""

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


def page(title: str, body: str, root: str, script: str = "") -> str:
    nav = (f'<p><a href="{root}index.html">overview</a> | '
           f'<a href="{root}hits.html">all JASPAR hits</a></p>')
    js = f"<script>{script}</script>" if script else ""
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body>{GLYPH_DEFS}{nav}"
            f"<h1>{escape(title)}</h1>{body}{js}</body></html>")


def fmt(x, digits: int = 3) -> str:
    return "-" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{digits}g}"


def row(*cells: str, head: bool = False) -> str:
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
           f'<text x="{pad}" y="{size - pad + 12}" font-size="9">{fmt(lo)}</text>'
           f'<text x="{size - 5}" y="{size - pad + 12}" font-size="9" text-anchor="end">'
           f"{fmt(hi)}</text>"]
    out += [f'<circle cx="{sx(a):.1f}" cy="{sy(c):.1f}" r="2.5" fill="{colour[s]}" '
            f'fill-opacity=".6"/>' for a, c, s in pts]
    out.append("</svg>")
    return "".join(out)
