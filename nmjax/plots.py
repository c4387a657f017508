"""Line plots and standalone logo files as SVG text, written directly (no plotting library).

Every plot is one <svg> element with its own styles, so the same text is a standalone .svg file
and can be inlined into an HTML page.
"""
from __future__ import annotations

from html import escape
from typing import Sequence

import numpy as np

from .logo import COLOURS, GLYPHS, logo_svg

PALETTE = ("#255c99", "#d62839", "#109648", "#f7b32b", "#7b2cbf", "#444444", "#0096c7",
           "#e76f51")
# scoped to the plot's own root (class nmplot): inlined into a page, it styles nothing else
_STYLE = ("<style>.nmplot .ax{font:8px sans-serif;fill:#666;text-anchor:end}"
          ".nmplot .lab{font:10px sans-serif;fill:#333}.nmplot .tl{font:11px sans-serif;fill:#222}"
          ".nmplot .site{fill:#ffeb3b;fill-opacity:.18;stroke:#c9a800;stroke-width:.8}</style>")


def _ticks(lo: float, hi: float, count: int = 5) -> np.ndarray:
    """Round tick values covering [lo, hi]."""
    span = hi - lo or abs(hi) or 1.0
    step = 10 ** np.floor(np.log10(span / count))
    step *= min((m for m in (1, 2, 5, 10) if span / (step * m) <= count), default=10)
    return np.arange(np.ceil(lo / step) * step, hi + step / 2, step)


def line_plot_svg(x: Sequence[float], series: Sequence[tuple[str, Sequence[float]]],
                  title: str, xlabel: str, ylabel: str, marks: Sequence[tuple[float, str]] = (),
                  width: int = 520, height: int = 240) -> str:
    """One line per (label, y) over shared x; `marks` are dashed vertical lines with a label.
    Non-finite y values break a line."""
    x = np.asarray(x, np.float64)
    ys = [np.asarray(y, np.float64) for _, y in series]
    finite = np.concatenate([y[np.isfinite(y)] for y in ys] + [np.zeros(0)])
    lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
    if hi == lo:
        lo, hi = lo - 1, hi + 1
    left, right, top, bottom = 48, 10, 22, 34
    legend_h = 12 * len(series) if len(series) > 1 else 0
    pw, ph = width - left - right, height - top - bottom - legend_h

    def sx(v):
        return left + (v - x.min()) / ((x.max() - x.min()) or 1) * pw

    def sy(v):
        return top + (hi - v) / (hi - lo) * ph

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="nmplot" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" role="img">', _STYLE,
           f"<title>{escape(title)}</title>",
           f'<text x="{left}" y="14" class="tl">{escape(title)}</text>',
           f'<path d="M{left} {top}V{top + ph}H{left + pw}" stroke="#888" fill="none"/>']
    for t in _ticks(lo, hi):
        out.append(f'<text x="{left - 3}" y="{sy(t) + 3:.1f}" class="ax">{t:g}</text>'
                   f'<path d="M{left - 2} {sy(t):.1f}H{left}" stroke="#888"/>')
    for t in _ticks(float(x.min()), float(x.max()), 8):
        out.append(f'<text x="{sx(t) + 4:.1f}" y="{top + ph + 10}" class="ax">{t:g}</text>')
    out.append(f'<text x="{left + pw / 2:.0f}" y="{top + ph + 22}" class="lab" '
               f'text-anchor="middle">{escape(xlabel)}</text><text x="10" y="{top + ph / 2:.0f}" '
               f'class="lab" text-anchor="middle" transform="rotate(-90 10 {top + ph / 2:.0f})">'
               f"{escape(ylabel)}</text>")
    for v, label in marks:
        out.append(f'<path d="M{sx(v):.1f} {top}V{top + ph}" stroke="#999" stroke-dasharray="3 3"/>'
                   f'<text x="{sx(v) + 2:.1f}" y="{top + 8}" class="lab">{escape(label)}</text>')
    for k, ((label, _), y) in enumerate(zip(series, ys)):
        colour = PALETTE[k % len(PALETTE)]
        path, pen = [], "M"
        for xi, yi in zip(x, y):
            if not np.isfinite(yi):
                pen = "M"
                continue
            path.append(f"{pen}{sx(xi):.1f} {sy(yi):.1f}")
            pen = "L"
        out.append(f'<path d="{"".join(path)}" stroke="{colour}" fill="none" stroke-width="1.3"/>')
        if legend_h:
            ly = height - legend_h + 12 * k + 4
            out.append(f'<path d="M{left} {ly}h14" stroke="{colour}" stroke-width="2"/>'
                       f'<text x="{left + 18}" y="{ly + 3}" class="lab">{escape(label)}</text>')
    out.append("</svg>")
    return "".join(out)


def standalone_logo_svg(ppm: np.ndarray, title: str = "", column_width: float = 10.0) -> str:
    """A logo (`nmjax.logo.logo_svg`) as a self-contained SVG file: glyphs and styles inside."""
    defs = "".join(f'<path id="nmjax-{b}" d="{GLYPHS[b]}" fill="{COLOURS[b]}"/>' for b in "ACGT")
    inner = logo_svg(ppm, column_width, 50.0, first_column=0, title=title)
    width = column_width * len(ppm) + 24
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="nmplot" width="{width:.0f}" '
            f'height="76">'
            f"{_STYLE}<defs>{defs}</defs>"
            f'<text x="2" y="10" class="tl">{escape(title)}</text>'
            f'<g transform="translate(0 12)">{inner}</g></svg>')
