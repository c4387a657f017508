"""Sequence logos as inline SVG, written directly (no plotting library: ~0.1 ms per logo).

Letters are fixed vector glyphs (no font needed) in a 100 x 100 box, scaled per position to
their information content contribution p_b x IC (bits), stacked smallest at the bottom.
Colours: A green, C blue, G orange, T red. A page holding logos includes GLYPH_DEFS once; each
letter is then a short <use> of its glyph (half the bytes of repeating the path).
"""
from __future__ import annotations

from html import escape

import numpy as np

from .motifs import information_content

COLOURS = {"A": "#109648", "C": "#255c99", "G": "#f7b32b", "T": "#d62839"}
GLYPHS = {
    "A": "M0 100L40 0H60L100 100H78L69 76H31L22 100ZM38 58H62L50 26Z",
    "C": "M86.8 17.9A48 50 0 1 0 86.8 82.1L71.4 69.3A28 30 0 1 1 71.4 30.7Z",
    "G": "M86.8 17.9A48 50 0 1 0 95.1 67.1L76.3 60.3A28 30 0 1 1 71.4 30.7ZM55 46H98V62H55Z",
    "T": "M0 0H100V18H60V100H40V18H0Z",
}


GLYPH_DEFS = ('<svg xmlns="http://www.w3.org/2000/svg" width="0" height="0" style="position:absolute">'
              "<defs>" + "".join(f'<path id="nmjax-{b}" d="{GLYPHS[b]}" fill="{COLOURS[b]}"/>'
                                 for b in "ACGT") + "</defs></svg>")
MIN_LETTER_PX = 0.3   # letters lower than this are not drawn (invisible, and most of the bytes)


def logo_svg(ppm: np.ndarray, column_width: float = 10.0, height: float = 50.0,
             sites: list[tuple[int, int, str]] = (), first_column: int = 0,
             title: str = "") -> str:
    """An <svg> logo of a (length, 4) PPM; `sites` are (start, end, label) boxes drawn over it
    (in the PPM's columns), `first_column` labels the axis (columns are 0-based). The page must
    include GLYPH_DEFS once."""
    ppm = np.asarray(ppm, np.float64)
    ic = information_content(ppm)
    label_h = 12.0 if sites else 0.0
    width = column_width * len(ppm)
    total_h = height + label_h + 12.0
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="logo" width="{width + 24:.0f}" '
             f'height="{total_h:.0f}" viewBox="-24 0 {width + 24:.1f} {total_h:.1f}" role="img">']
    if title:
        parts.append(f"<title>{escape(title)}</title>")
    base = label_h + height
    parts.append(f'<path d="M-2 {label_h:.1f}V{base:.1f}H{width:.1f}" stroke="#888" fill="none" '
                 f'stroke-width="0.8"/><text x="-4" y="{label_h + 8:.1f}" class="ax">2</text>'
                 f'<text x="-4" y="{base:.1f}" class="ax">0</text>')
    for s, e, label in sites:
        x0, x1 = max(s, 0) * column_width, min(e, len(ppm)) * column_width
        parts.append(f'<rect x="{x0:.1f}" y="{label_h:.1f}" width="{max(x1 - x0, 0):.1f}" '
                     f'height="{height:.1f}" class="site"/><text x="{x0 + 1:.1f}" '
                     f'y="{label_h - 2:.1f}" class="lab">{escape(label)}</text>')
    for i, (row, bits) in enumerate(zip(ppm, ic)):
        y = base
        for b in np.argsort(row, kind="stable"):
            h = row[b] * bits / 2.0 * height
            y -= h
            if h < MIN_LETTER_PX:
                continue
            parts.append(f'<use href="#nmjax-{"ACGT"[b]}" transform="translate({i * column_width:.1f} '
                         f'{y:.2f}) scale({column_width / 100:.3f} {h / 100:.4f})"/>')
        if (i + first_column) % 10 == 0:
            parts.append(f'<text x="{i * column_width:.1f}" y="{base + 10:.1f}" class="ax">'
                         f'{i + first_column}</text>')
    parts.append("</svg>")
    return "".join(parts)
