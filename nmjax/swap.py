"""`nmjax swap`: the paper's problematic-neuron analysis (Methods), a window swap between the
consensus sequences of two decoupled subsets of one neuron.

A sick subset's consensus does not activate the neuron (conact far below act): the sampled
sequences stack synonymous motifs that no single consensus represents. Take it and a consistent
subset's consensus (one that does activate the neuron), align the two, slide a window (51 bp in
the paper) along them, write the consistent consensus's bases of the window into the sick one,
and record f at each window position: the positions where f recovers are the part of the motif
whose sampled sequences disagree.

Defaults: the sick subset is the neuron's subset with the lowest conact / act, the consistent
one the highest. Subsets are different shifts of one motif mixture, so the consistent
consensus is first shifted by the offset d (|d| < the layer's shift multiplicity S) that best
superposes the two subsets' PPMs (largest mean sum_b p_b q_b over overlapping columns); window
bases that the shift moves outside the consensus are left as in the sick one.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .errors import NmjaxError
from .fileio import write_text
from .network import Network
from .runfolder import layer_dir, neuron_tag, parse_ppm_name, read_neurons, read_ppms, read_run

PAPER_WINDOW = 51


@dataclass(frozen=True)
class SwapResult:
    """f of the sick consensus with window [start, start + window) swapped in, per start."""

    layer: int
    neuron: int
    sick: int
    consistent: int
    shift: int
    window: int
    starts: tuple[int, ...]
    f: tuple[float, ...]
    f_sick: float
    f_consistent: float
    act: float


def align_shift(sick: np.ndarray, consistent: np.ndarray, max_shift: int) -> int:
    """Offset d (consistent column i + d sits at sick column i) best superposing two PPMs."""
    best, best_d = -np.inf, 0
    n = len(sick)
    for d in range(-max_shift, max_shift + 1):
        lo, hi = max(0, -d), min(n, n - d)
        if hi - lo < n // 2:
            continue
        score = float((sick[lo:hi] * consistent[lo + d:hi + d]).sum(1).mean())
        if score > best + 1e-12:
            best, best_d = score, d
    return best_d


def window_swap(net: Network, out_dir: str | os.PathLike, layer: int, neuron: int,
                window: int | None = None, sick: int | None = None,
                consistent: int | None = None) -> SwapResult:
    """Slide the swap window along the aligned consensi of two subsets (module docstring)."""
    folder = layer_dir(out_dir, layer)
    n_bp = net.receptive_field(layer)
    window = min(PAPER_WINDOW, max(1, n_bp // 2)) if window is None else window
    if not 1 <= window <= n_bp:
        raise NmjaxError(f"window {window} bp: must be 1..{n_bp}, the receptive field of "
                         f"layer {layer}")
    rows = {r.subset: r for r in read_neurons(folder)
            if r.neuron == neuron and r.n > 0 and len(r.consensus) == n_bp}
    if len(rows) < 2:
        raise NmjaxError(f"{folder}/neurons.tsv: neuron {neuron} has {len(rows)} decoupled "
                         f"subset(s) with a {n_bp} bp consensus; a swap needs two")
    ratio = {s: r.conact / r.act if r.act > 0 else -np.inf for s, r in rows.items()}
    sick = min(ratio, key=lambda s: (ratio[s], s)) if sick is None else sick
    consistent = max(ratio, key=lambda s: (ratio[s], -s)) if consistent is None else consistent
    for s in (sick, consistent):
        if s not in rows:
            raise NmjaxError(f"neuron {neuron} of layer {layer} has no subset {s} "
                             f"(it has {sorted(rows)})")
    if sick == consistent:
        raise NmjaxError(f"the sick and consistent subsets are both {sick}; give two subsets")
    codes = {s: np.array(["ACGT".index(c) for c in rows[s].consensus]) for s in (sick, consistent)}
    ppms = {parse_ppm_name(m.name)[2]: m.ppm for m in read_ppms(folder)
            if parse_ppm_name(m.name)[1] == neuron}
    eye = np.eye(4)
    shift = align_shift(*(ppms.get(s, eye[codes[s]]) for s in (sick, consistent)),
                        min(net.shift_multiplicity(layer), n_bp) - 1)
    aligned = codes[sick].copy()
    lo, hi = max(0, -shift), min(n_bp, n_bp - shift)
    aligned[lo:hi] = codes[consistent][lo + shift:hi + shift]
    starts = np.arange(n_bp - window + 1)
    swapped = np.repeat(codes[sick][None], len(starts) + 2, axis=0)
    for k, p in enumerate(starts):
        swapped[k, p:p + window] = aligned[p:p + window]
    swapped[-1] = codes[consistent]
    f = np.asarray(net.neuron_values(eye[swapped].astype(np.float32), layer, neuron), np.float64)
    return SwapResult(layer, neuron, sick, consistent, shift, window, tuple(int(p) for p in starts),
                      tuple(float(v) for v in f[:-2]), float(f[-2]), float(f[-1]),
                      max(r.act for r in rows.values()))


def write_swap(out_dir: str | os.PathLike, result: SwapResult) -> Path:
    """DIR/layer{L}/swap/neuron{N}.tsv (start, end, f, gain over the sick consensus), .json
    and .svg; returns the TSV path."""
    from .plots import line_plot_svg

    stem = layer_dir(out_dir, result.layer) / "swap" / f"neuron{result.neuron}"
    write_text(f"{stem}.tsv", "start\tend\tf\tgain\n" + "".join(
        f"{p}\t{p + result.window}\t{v:.5g}\t{v - result.f_sick:.5g}\n"
        for p, v in zip(result.starts, result.f)))
    write_text(f"{stem}.json", json.dumps(asdict(result)) + "\n")
    n = len(result.starts)
    write_text(f"{stem}.svg", line_plot_svg(
        result.starts, [("sick consensus, window swapped", result.f),
                        (f"consistent subset S{result.consistent}", [result.f_consistent] * n),
                        (f"sick subset S{result.sick}", [result.f_sick] * n)],
        f"{neuron_tag(result.layer, result.neuron)}: {result.window} bp window of S{result.consistent} "
        f"(shift {result.shift}) swapped into S{result.sick}", "window start (bp)", "f"))
    return Path(f"{stem}.tsv")


def decoded_model(out_dir: str | os.PathLike) -> str | None:
    """The model path recorded in DIR/run.json by `nmjax decode` (None: the bundled example)."""
    try:
        run = read_run(out_dir)
    except (OSError, ValueError) as e:
        raise NmjaxError(f"cannot read {out_dir}/run.json: {e}") from None
    if run is None:
        raise NmjaxError(f"{out_dir} has no run.json: give the --out folder of `nmjax decode`")
    model = run.get("model", "")
    return None if model in ("", "bundled example") else model
