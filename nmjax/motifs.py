"""Motifs of decoupled sample subsets (method-notes §3-4): weighted PPMs and IC segmentation."""
from __future__ import annotations

import numpy as np


def value_bins(f: np.ndarray, top: float, bins: int) -> np.ndarray:
    """Bin index of each f in (0, top] split into `bins` equal bins; the max lands in the top bin.

    Bin i holds (top*i/bins, top*(i+1)/bins]; computed in float64 and clipped, so f == top is in
    bin bins-1 whatever the rounding (the reference's float32 edges can leave it out).
    """
    idx = np.ceil(np.asarray(f, np.float64) * bins / float(top)).astype(np.int64) - 1
    return np.clip(idx, 0, bins - 1)


EMPTY_BIN_RULES = ("nearest", "above")


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
    onehot = np.eye(4)[bases]
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


def segment(ppm: np.ndarray, threshold: float = 1.0, extend: int = 3, min_length: int = 8
            ) -> list[tuple[int, int]]:
    """Motif regions of a (smoothed) PPM as 0-based half-open (start, end).

    Positions with IC > threshold, each extended by `extend` bp both sides (clipped), overlapping
    or touching regions merged, regions longer than `min_length` bp kept.
    """
    n = len(ppm)
    regions: list[list[int]] = []
    for p in np.flatnonzero(information_content(ppm) > threshold):
        start, end = max(0, p - extend), min(n, p + extend + 1)
        if regions and start <= regions[-1][1]:
            regions[-1][1] = max(regions[-1][1], end)
        else:
            regions.append([start, end])
    return [(s, e) for s, e in regions if e - s > min_length]
