"""Which motifs a decoded neuron has, and the report's "validation" section of a neuron.

`neuron_motifs` is the one reader of a neuron's motifs for the scan's motif-position profiles:
the dictionary of layer{L}/grammar.json (and the database-matrix parts of its composite
motifs) where the grammar stage has run, else the neuron's segmented motifs of motifs.meme.
`validation_section_html` gathers what `nmjax scan`, `nmjax swap` and `nmjax space` wrote for
a neuron into one HTML fragment (inline SVG, links to the files).
"""
from __future__ import annotations

import json
import os
from html import escape
from pathlib import Path

import numpy as np

from .errors import NmjaxError
from .meme import Motif
from .runfolder import layer_dir, neuron_tag, parse_ppm_name, read_neurons, read_segments

MAX_SEGMENTS = 8      # segmented motifs used per neuron without a grammar (largest subsets first)


def neuron_motifs(out_dir: str | os.PathLike, layer: int, neuron: int,
                  max_segments: int = MAX_SEGMENTS) -> list[Motif]:
    """The motifs of a decoded neuron, named L{L}_N{n}_{id} (alt_name: the matched TF name).

    From DIR/layer{L}/grammar.json when it lists the neuron: each hard motif of its dictionary
    ("id", "name", "ppm" rows ACGT; `nmjax.grammar`). Else the neuron's segments in
    motifs.meme (L{L}_N{n}_S{s}_{start}-{end}), those of its largest subsets first, at most `max_segments`. [] for a neuron with no motif.
    """
    folder = layer_dir(out_dir, layer)
    grammar = folder / "grammar.json"
    if grammar.is_file():
        try:
            entry = json.loads(grammar.read_text()).get("neurons", {}).get(str(neuron))
        except (OSError, ValueError) as e:
            raise NmjaxError(f"cannot read {grammar}: {e}") from None
        if entry is not None and entry.get("dictionary"):
            return _dictionary_motifs(layer, neuron, entry["dictionary"])
    segments = [m for m in read_segments(folder)
                if parse_ppm_name(m.name)[1] == neuron]
    if not segments:
        return []
    sizes = {r.subset: r.n for r in read_neurons(folder) if r.neuron == neuron}
    segments.sort(key=lambda m: (-sizes.get(parse_ppm_name(m.name)[2], 0), m.name))
    return segments[:max_segments]


def _dictionary_motifs(layer: int, neuron: int, dictionary: list[dict]) -> list[Motif]:
    out = []
    for d in dictionary:
        ppm = np.asarray(d["ppm"], np.float64)
        out.append(Motif(f"{neuron_tag(layer, neuron)}_{d['id']}", ppm / ppm.sum(1, keepdims=True),
                         alt_name=d["name"]))
    return out


def validation_section_html(out_dir: str | os.PathLike, layer: int, neuron: int,
                            link_root: str = "../../") -> str:
    """The "validation" section of a neuron's report page: its scan (top regions, their
    weighted logo, motif-position profiles), window swap and spacing scans, from the files of
    `nmjax scan` / `swap` / `space` in DIR/layer{L}/ ("" if there are none). The page must
    include `nmjax.logo.GLYPH_DEFS`; links are `link_root` + the path under DIR (the neuron
    pages sit two folders below DIR)."""
    from .logo import logo_svg

    base = layer_dir(out_dir, layer)
    parts = []
    scan = base / "scan" / f"neuron{neuron}.json"
    if scan.is_file():
        info = json.loads(scan.read_text())
        hits = ", ".join(f"{escape(m['name'])} in {100 * m['in_window']:.0f} %"
                         for m in info["motifs"])
        parts.append(f"<h3>Top regions on the scanned sequences</h3><p>{info['regions']} "
                     f"regions (of {info['top']} asked), f {_range(info['scores'])}"
                     + (f"; a site (p &#8804; {info['p_value']:g}) inside the window: {hits}"
                        if hits else "") + "</p>"
                     + logo_svg(np.asarray(info["ppm"]), 6, 40)
                     + _inline(base / "scan" / f"neuron{neuron}_motifs.svg")
                     + _links(link_root, base.parent, [base / "scan" / f"neuron{neuron}{s}"
                                                       for s in (".bed", "_motifs.tsv", ".json")]))
    swap = base / "swap" / f"neuron{neuron}.svg"
    if swap.is_file():
        parts.append("<h3>Window swap</h3>" + _inline(swap) + _links(
            link_root, base.parent, [swap.with_suffix(".tsv"), swap.with_suffix(".json")]))
    spacing = sorted((base / "spacing").glob(f"*_neuron{neuron}_*.svg"))
    if spacing:
        parts.append("<h3>Spacing scans</h3>" + "".join(
            _inline(p) + _links(link_root, base.parent,
                                [p.parent / (p.name.split("_neuron")[0] + ".tsv")])
            for p in spacing))
    return f'<section class="validation"><h2>Validation</h2>{"".join(parts)}</section>' \
        if parts else ""


def _range(values: list[float]) -> str:
    return f"{min(values):.3g} to {max(values):.3g}" if values else "none"


def _inline(svg: Path) -> str:
    return f"<div>{svg.read_text()}</div>" if svg.is_file() else ""


def _links(root: str, out_dir: Path, files: list[Path]) -> str:
    present = [f for f in files if f.is_file()]
    return "<p>" + " | ".join(f'<a href="{escape(root + f.relative_to(out_dir).as_posix())}">'
                              f"{escape(f.name)}</a>" for f in present) + "</p>" if present else ""
