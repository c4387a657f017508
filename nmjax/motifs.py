"""Motifs of decoupled sample subsets (method-notes §3-4): weighted PPMs and IC segmentation."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .arrays import normalise_rows, one_hot


def value_bins(f: np.ndarray, top: float, bins: int) -> np.ndarray:
    """Bin index of each f in (0, top] split into `bins` equal bins; the max lands in the top bin.

    Bin i holds (top*i/bins, top*(i+1)/bins]; computed in float64 and clipped, so f == top is in
    bin bins-1 whatever the rounding (the reference's float32 edges can leave it out).
    """
    idx = np.ceil(np.asarray(f, np.float64) * bins / float(top)).astype(np.int64) - 1
    return np.clip(idx, 0, bins - 1)




def weighted_ppm(bases: np.ndarray, f: np.ndarray, bins: int = 20, empty: str = "nearest"
                 ) -> np.ndarray:
    """Activation-weighted PPM (N, 4) of sequences `bases` (M, N) with values f (M,) > 0.

    (0, A], A = max f, is split into `bins` equal bins; per bin i, PPM_i is the mean one-hot of
    its sequences and V_i their mean f. An empty bin reuses the PPM of a non-empty bin, with
    V_i = the bin centre: the nearest one (the lower on a tie) for empty='nearest', the nearest
    one above for empty='above' (the authors' code; the top bin holds A, so one exists).
    PPM = sum_i V_i PPM_i / sum_i V_i, renormalised per position: E[X] under p(y) ~ y.
    """
    f = np.asarray(f, np.float64)
    top = f.max()
    b = value_bins(f, top, bins)
    onehot = one_hot(bases, np.float64)
    filled = np.flatnonzero(np.bincount(b, minlength=bins) > 0)
    ppms = np.zeros((bins,) + onehot.shape[1:])
    values = np.zeros(bins)
    for i in range(bins):
        if i in filled:
            ppms[i] = onehot[b == i].mean(0)
            values[i] = f[b == i].mean()
        else:
            near = (filled[np.argmin(np.abs(filled - i))] if empty == "nearest"
                    else filled[np.searchsorted(filled, i)])
            ppms[i] = onehot[b == near].mean(0)
            values[i] = top * (i + 0.5) / bins
    ppm = np.tensordot(values, ppms, axes=1) / values.sum()
    return ppm / ppm.sum(1, keepdims=True)


def consensus(ppm: np.ndarray) -> np.ndarray:
    """Most probable base per position (N,) uint8 (first base on a tie)."""
    return np.argmax(ppm, axis=1).astype(np.uint8)


def consensus_string(bases: np.ndarray) -> str:
    return "".join("ACGT"[b] for b in bases)


def laplace(ppm: np.ndarray, n: int, pseudo: float = 80.0) -> np.ndarray:
    """PPM' = (PPM * n + 0.25 * M) / (n + M)."""
    return (np.asarray(ppm) * n + 0.25 * pseudo) / (n + pseudo)


def information_content(ppm: np.ndarray) -> np.ndarray:
    """Bits per position: 2 + sum_b p_b log2 p_b."""
    p = np.asarray(ppm, np.float64)
    return 2.0 + np.sum(np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0), axis=1)


def unsmooth(ppm: np.ndarray, n: int, pseudo: float = 80.0) -> np.ndarray:
    """The raw PPM of a Laplace-smoothed one (inverse of `laplace`), clipped to [0, 1] and
    renormalised: the decoder's ppms.meme hold smoothed PPMs with nsites = n."""
    return normalise_rows(np.clip((np.asarray(ppm, np.float64) * (n + pseudo) - 0.25 * pseudo)
                                  / max(n, 1), 0, 1))


@dataclass(frozen=True)
class SegmentRule:
    """How a decoupled PPM is cut into motif segments; one rule serves motifs.meme (matching)
    and the grammar's dictionary, so both read the same sites.

    The raw PPM is Laplace-smoothed with `pseudocount` (its subset's n), IC = 2 - entropy in
    `unit` ('bit': log2, 'nat': ln, as the authors' code computes it, so 1 nat = 0.557 bits),
    averaged over a running window of `running_mean` positions; positions above `threshold`
    are widened by `left` / `right` bp, touching regions merge, and regions of at least
    `min_length` bp are kept."""

    name: str
    pseudocount: float
    unit: str
    threshold: float
    running_mean: int
    left: int
    right: int
    min_length: int


SEGMENT_RULES = {
    # method-notes §4 as printed: IC > 1 bit on the M = 80 PPM, 3 bp both sides, > 8 bp
    "paper": SegmentRule("paper", 80.0, "bit", 1.0, 1, 3, 3, 9),
    # the authors' ppm_segment as build_segment.py / build_dict.py call it: M = 30,
    # 2 - entropy in nats > 1 on a 3-position running mean (end positions 0), flank 1 (1 bp
    # each side), at least int(1.5 * flank) + 3 = 4 bp
    "reference": SegmentRule("reference", 30.0, "nat", 1.0, 3, 1, 1, 4),
}


def segment_rule(name: str) -> SegmentRule:
    from .errors import NmjaxError

    if name not in SEGMENT_RULES:
        raise NmjaxError(f"unknown segmentation rule {name!r}; choose from "
                         f"{', '.join(SEGMENT_RULES)}")
    return SEGMENT_RULES[name]


def segment_ppm(raw_ppm: np.ndarray, n: int, rule: SegmentRule) -> list[tuple[int, int]]:
    """Motif regions of a raw decoupled PPM (n sequences) under `rule`, as 0-based half-open
    (start, end)."""
    p = laplace(raw_ppm, n, rule.pseudocount)
    ic = information_content(p)
    if rule.unit == "nat":
        ic = 2.0 + (ic - 2.0) * np.log(2.0)
    w = rule.running_mean
    if w > 1:
        smooth = np.zeros_like(ic)
        if len(ic) > w - 1:
            smooth[w // 2:len(ic) - (w - 1 - w // 2)] = np.convolve(ic, np.ones(w) / w, "valid")
        ic = smooth
    core = ic > rule.threshold
    on = core.copy()
    for d in range(1, rule.left + 1):
        on[:-d] |= core[d:]
    for d in range(1, rule.right + 1):
        on[d:] |= core[:-d]
    edges = np.flatnonzero(np.diff(np.concatenate([[False], on, [False]]).astype(np.int8)))
    return [(int(s), int(e)) for s, e in zip(edges[::2], edges[1::2]) if e - s >= rule.min_length]
