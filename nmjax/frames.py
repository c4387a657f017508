"""Motif frames and where they lie in a neuron's decoupled PPMs: the coordinates the
dictionary (`nmjax.dictionary`) aligns segments, clusters and database matrices with."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .matching import TomtomResult


@dataclass(frozen=True)
class DecodedPPM:
    """One decoupled PPM of a neuron (smoothed as in ppms.meme) with its subset's n and act."""

    subset: int
    ppm: np.ndarray
    n: int
    act: float
    pseudocount: float = 80.0

    @property
    def weight(self) -> float:
        """The subset's share in every weighted mean: n x act (the paper's E[E[X|Y]])."""
        return float(self.n) * max(float(self.act), 0.0)


@dataclass(frozen=True)
class Placement:
    """Where a motif frame lies in a decoupled PPM: frame column k is PPM column shift + k, or,
    on the reverse strand, shift - 1 - k read complemented."""

    subset: int
    shift: int
    reverse: bool

    def span(self, lo: int, hi: int) -> tuple[int, int]:
        """PPM columns [start, end) of frame columns [lo, hi)."""
        return ((self.shift - hi, self.shift - lo) if self.reverse
                else (self.shift + lo, self.shift + hi))

    def through(self, shift: int, reverse: bool) -> "Placement":
        """The placement of a frame B whose column k is this frame's column shift + k (or
        shift - 1 - k if `reverse`)."""
        return Placement(self.subset, self.shift - shift if self.reverse else self.shift + shift,
                         self.reverse != reverse)


def alignment(res: TomtomResult, q: int, t: int, target_length: int) -> tuple[int, bool]:
    """(shift, reverse) of target t's frame in query q's frame from a Tomtom row: target column
    k is query column shift + k (reverse: shift - 1 - k, complemented)."""
    o = int(res.offset[q, t])
    return (target_length - o, True) if res.reverse[q, t] else (-o, False)


def inverse(shift: int, reverse: bool) -> tuple[int, bool]:
    """The alignment of frame A in frame B from B's in A."""
    return (shift, True) if reverse else (-shift, False)


def frame_columns(ppm: np.ndarray, place: Placement, lo: int, hi: int) -> np.ndarray:
    """Columns [lo, hi) of a frame read from `ppm` through `place` (nan outside the PPM)."""
    k = np.arange(lo, hi)
    cols = place.shift - 1 - k if place.reverse else place.shift + k
    out = np.full((hi - lo, 4), np.nan)
    ok = (cols >= 0) & (cols < len(ppm))
    rows = ppm[cols[ok]]
    out[ok] = rows[:, ::-1] if place.reverse else rows
    return out


def weighted_frame(ppms: dict[int, DecodedPPM], places: Sequence[Placement], lo: int, hi: int
                   ) -> np.ndarray:
    """Mean of frame columns [lo, hi) over placements, weighted by n x act (uniform where no
    placement reaches)."""
    total, weight = np.zeros((hi - lo, 4)), np.zeros(hi - lo)
    for place in places:
        cols = frame_columns(ppms[place.subset].ppm, place, lo, hi)
        w = max(ppms[place.subset].weight, 1e-12)
        ok = ~np.isnan(cols[:, 0])
        total[ok] += w * cols[ok]
        weight[ok] += w
    return np.where(weight[:, None] > 0, total / np.maximum(weight, 1e-300)[:, None], 0.25)
