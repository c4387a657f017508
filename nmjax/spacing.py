"""`nmjax space`: the in-silico check of a grammar's spacing (does `CTCF-6N-CEBPB` peak at 6?).

Two motifs A and B are written into background windows at every gap (bases between the end of
the first and the start of the second) in all 8 arrangements: order AB or BA, each motif on
either strand. Per sample, each motif is a fresh draw from its PPM and the pair starts at a
uniformly random position of the window; the same background windows and draws serve every
gap and arrangement, so the curves differ by the spacing only. The response is each neuron's f
of a conv layer (window = its receptive field) or, with `output=True`, every model output
(window = the model's input length), averaged over the samples.

Backgrounds: "uniform" (independent uniform bases) always; with a FASTA file also "shuffled":
windows drawn from its sequences (none holding N), each shuffled preserving its dinucleotide
counts (Altschul & Erickson 1985), so the background keeps the real sequence's local
composition (CpG depletion, GC) but loses its motifs.

Per neuron (or output) and background the summary gives the best arrangement (the one with the
highest mean response at any gap), its peak gap and the contrast: peak minus the median over
gaps of that arrangement. Neurons are ranked by contrast.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .arrays import draw_instances
from .errors import NmjaxError
from .fileio import write_text
from .meme import Motif
from .network import Network
from .runfolder import layer_dir
from .sequences import N_CODE, read_fasta


@dataclass(frozen=True)
class SpacingResult:
    """mean / sem: (backgrounds, arrangements, gaps, responses) arrays; responses are the
    neurons of `layer` (or the model outputs when layer is None)."""

    motifs: tuple[str, str]
    layer: int | None
    responses: tuple[int, ...]
    backgrounds: tuple[str, ...]
    arrangements: tuple[str, ...]
    gaps: tuple[int, ...]
    mean: np.ndarray
    sem: np.ndarray

    def summary(self) -> list[dict]:
        """Per background and response: best arrangement, its peak gap and contrast, ranked."""
        rows = []
        for b, background in enumerate(self.backgrounds):
            for r, response in enumerate(self.responses):
                curves = self.mean[b, :, :, r]
                arr = int(np.argmax(curves.max(1)))
                peak = int(np.argmax(curves[arr]))
                rows.append({"background": background, "response": response,
                             "arrangement": self.arrangements[arr], "peak_gap": self.gaps[peak],
                             "peak": float(curves[arr, peak]),
                             "contrast": float(curves[arr, peak] - np.median(curves[arr]))})
        return sorted(rows, key=lambda x: (x["background"], -x["contrast"], x["response"]))


def arrangements(a: str, b: str) -> list[tuple[str, tuple[tuple[int, bool], ...]]]:
    """(label, ((motif index, minus strand), (motif index, minus strand))) for all 8."""
    out = []
    for first, second in ((0, 1), (1, 0)):
        for s1 in (False, True):
            for s2 in (False, True):
                names = (a, b)
                label = (f"{names[first]}{'-' if s1 else '+'} "
                         f"{names[second]}{'-' if s2 else '+'}")
                out.append((label, ((first, s1), (second, s2))))
    return out


def dinucleotide_shuffle(seq: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random sequence with the same first base, last base and dinucleotide counts
    (Altschul-Erickson: a random Eulerian walk whose last exits from each base form a tree
    towards the last base)."""
    seq = np.asarray(seq)
    if len(seq) < 3:
        return seq.copy()
    last = int(seq[-1])
    successors = [list(seq[1:][seq[:-1] == v]) for v in range(4)]
    bases = [v for v in range(4) if successors[v]]
    while True:
        exits = {v: successors[v][rng.integers(len(successors[v]))] for v in bases if v != last}
        if all(_reaches(v, exits, last) for v in exits):
            break
    out = [int(seq[0])]
    lists = {}
    for v in bases:
        rest = list(successors[v])
        if v in exits:
            rest.remove(exits[v])
        rng.shuffle(rest)
        lists[v] = rest + ([exits[v]] if v in exits else [])
    for _ in range(len(seq) - 1):
        out.append(int(lists[out[-1]].pop(0)))
    return np.array(out, seq.dtype)


def _reaches(v: int, exits: dict, last: int) -> bool:
    seen = set()
    while v != last:
        if v in seen:
            return False
        seen.add(v)
        v = int(exits[v])
    return True


def background_windows(length: int, samples: int, rng: np.random.Generator,
                       fasta: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """{"uniform": (samples, length)[, "shuffled": ...]} base codes."""
    out = {"uniform": rng.integers(0, 4, (samples, length)).astype(np.uint8)}
    if fasta is None:
        return out
    records = [s for s in read_fasta(fasta).values() if len(s) >= length]
    starts = [(k, i) for k, s in enumerate(records)
              for i in range(0, len(s) - length + 1, max(1, length // 2))
              if not (s[i:i + length] == N_CODE).any()]
    if not starts:
        raise NmjaxError(f"{fasta}: no {length} bp window without N to shuffle; give longer "
                         f"sequences")
    picks = rng.integers(len(starts), size=samples)
    out["shuffled"] = np.stack([dinucleotide_shuffle(records[starts[p][0]][
        starts[p][1]:starts[p][1] + length], rng) for p in picks]).astype(np.uint8)
    return out


def _draws(rng: np.random.Generator, ppm: np.ndarray, samples: int) -> np.ndarray:
    return draw_instances(rng, ppm, samples).astype(np.uint8)


def spacing_scan(net: Network, motif_a: Motif, motif_b: Motif, layer: int | None,
                 gaps: Sequence[int] = range(0, 41), samples: int = 200, seed: int = 0,
                 fasta: str | os.PathLike | None = None,
                 neurons: Sequence[int] | None = None) -> SpacingResult:
    """Mean response per gap, arrangement and background (module docstring); layer None
    means the model outputs."""
    gaps = tuple(sorted(set(int(g) for g in gaps)))
    if not gaps or gaps[0] < 0 or samples < 1:
        raise NmjaxError(f"gaps must be >= 0 and samples >= 1 (got gaps {gaps}, samples {samples})")
    if layer is None:
        length, where = net.config.input_length, "the model input"
        if not length:
            raise NmjaxError("this model records no input length; scan a conv layer instead")
    else:
        length, where = net.receptive_field(layer), f"layer {layer}'s receptive field"
    need = len(motif_a.ppm) + len(motif_b.ppm) + gaps[-1]
    if need > length:
        raise NmjaxError(f"gap {gaps[-1]} between {motif_a.name} ({len(motif_a.ppm)} bp) and "
                         f"{motif_b.name} ({len(motif_b.ppm)} bp) needs {need} bp; {where} is "
                         f"{length} bp: lower the largest gap or scan a deeper layer")
    responses = tuple(range(net.channels(layer) if layer else _outputs(net)))
    if neurons is not None:
        bad = [n for n in neurons if n not in responses]
        if bad:
            raise NmjaxError(f"neurons {bad} do not exist ({where}: 0..{responses[-1]})")
        responses = tuple(sorted(set(neurons)))
    rng = np.random.default_rng([seed, layer or 0])
    backgrounds = background_windows(length, samples, rng, fasta)
    draws = [_draws(rng, m.ppm, samples) for m in (motif_a, motif_b)]
    fraction = rng.random(samples)
    layout = arrangements(motif_a.alt_name or motif_a.name, motif_b.alt_name or motif_b.name)
    eye = np.eye(4, dtype=np.float32)
    mean = np.zeros((len(backgrounds), len(layout), len(gaps), len(responses)))
    sem = np.zeros_like(mean)
    for b, windows in enumerate(backgrounds.values()):
        for a, (_, parts) in enumerate(layout):
            for g, gap in enumerate(gaps):
                x = eye[_insert(windows, draws, parts, gap, fraction)]
                f = np.asarray(net.conv_output(x, layer)[:, 0] if layer else net.predict(x))
                f = f[:, list(responses)]
                mean[b, a, g] = f.mean(0)
                sem[b, a, g] = f.std(0) / np.sqrt(samples)
    names = tuple(m.alt_name or m.name for m in (motif_a, motif_b))
    return SpacingResult(names, layer, responses, tuple(backgrounds), tuple(l for l, _ in layout),
                         gaps, mean, sem)


def _outputs(net: Network) -> int:
    x = np.zeros((1, net.config.input_length, 4), np.float32)
    return int(np.asarray(net.predict(x)).shape[-1])


def _insert(windows: np.ndarray, draws: list[np.ndarray], parts, gap: int,
            fraction: np.ndarray) -> np.ndarray:
    """Windows with the pair written at a random start (same `fraction` of the free room)."""
    pieces = [draws[m] if not minus else 3 - draws[m][:, ::-1] for m, minus in parts]
    span = pieces[0].shape[1] + gap + pieces[1].shape[1]
    starts = (fraction * (windows.shape[1] - span + 1)).astype(int)
    out = windows.copy()
    rows = np.arange(len(out))[:, None]
    out[rows, starts[:, None] + np.arange(pieces[0].shape[1])] = pieces[0]
    second = starts + pieces[0].shape[1] + gap
    out[rows, second[:, None] + np.arange(pieces[1].shape[1])] = pieces[1]
    return out


def write_spacing(out_dir: str | os.PathLike, result: SpacingResult, plots: int = 4) -> Path:
    """TSV of every mean, JSON (settings, curves, summary) and an SVG per background for the
    `plots` best responses; returns the TSV path (DIR/layer{L}/spacing/ or DIR/output/...)."""
    from .plots import line_plot_svg

    folder = (layer_dir(out_dir, result.layer) if result.layer else Path(out_dir) / "output"
              ) / "spacing"
    stem = "-".join(re.sub(r"[^A-Za-z0-9._]+", "_", n) for n in result.motifs)
    what = "neuron" if result.layer else "output"
    lines = [f"background\tarrangement\tgap\t{what}\tmean\tsem"]
    for b, bg in enumerate(result.backgrounds):
        for a, arr in enumerate(result.arrangements):
            for g, gap in enumerate(result.gaps):
                lines += [f"{bg}\t{arr}\t{gap}\t{r}\t{result.mean[b, a, g, k]:.5g}\t"
                          f"{result.sem[b, a, g, k]:.3g}" for k, r in enumerate(result.responses)]
    summary = result.summary()
    for b, bg in enumerate(result.backgrounds):
        for row in [s for s in summary if s["background"] == bg][:plots]:
            k = result.responses.index(row["response"])
            write_text(folder / f"{stem}_{what}{row['response']}_{bg}.svg", line_plot_svg(
                result.gaps, [(arr, result.mean[b, a, :, k])
                              for a, arr in enumerate(result.arrangements)],
                f"{' / '.join(result.motifs)}: {what} {row['response']}"
                + (f" of layer {result.layer}" if result.layer else "")
                + f", {bg} background (peak at gap {row['peak_gap']})",
                "gap (bp)", "mean response", [(row["peak_gap"], f"{row['peak_gap']}N")]))
    write_text(folder / f"{stem}.json", json.dumps({
        "motifs": result.motifs, "layer": result.layer, "responses": list(result.responses),
        "backgrounds": list(result.backgrounds), "arrangements": list(result.arrangements),
        "gaps": list(result.gaps), "summary": summary, "mean": np.round(result.mean, 5).tolist()},
        indent=1) + "\n")
    write_text(folder / f"{stem}.tsv", "\n".join(lines) + "\n")
    return folder / f"{stem}.tsv"
