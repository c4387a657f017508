"""Motif sites in sequences with FIMO's statistics, in process (numpy).

FIMO (Grant et al., Bioinformatics 2011) scores every window with the motif's log-odds matrix
against a uniform background and reports windows whose p-value under that background is at
most a threshold (1e-4 by default, FIMO's). As in memelite's `fimo` (whose defaults these are:
log2(p + 1e-4) - log2(0.25), scores binned to 0.1 bit), p-values are exact for the binned
scores: the score distribution of a uniform random window is built column by column. memelite's
own `fimo` needs pandas and pyfaidx, which nmjax does not otherwise use; this is the same
computation on base-code arrays. An N scores 0 (the window is still scored, as in memelite);
both strands are searched, a minus-strand site being the reverse-complement matrix's hit.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

P_VALUE = 1e-4
BIN_BITS = 0.1
EPS = 1e-4


@dataclass(frozen=True)
class Sites:
    """Motif hits: row of the scanned array, first base, strand (+1 / -1) and p-value."""

    row: np.ndarray
    start: np.ndarray
    strand: np.ndarray
    p_value: np.ndarray


def binned_log_odds(ppm: np.ndarray) -> np.ndarray:
    """(width, 5) integer scores in BIN_BITS units; column 4 (N) scores 0."""
    scores = np.log2(np.asarray(ppm, np.float64) + EPS) - np.log2(0.25)
    out = np.zeros((len(scores), 5), np.int64)
    out[:, :4] = np.round(scores / BIN_BITS)
    return out


def score_p_values(table: np.ndarray) -> tuple[int, np.ndarray]:
    """(lowest score, P(score >= lowest + k) for k = 0..) of a uniform random window."""
    low = int(table[:, :4].min(1).sum())
    dist = np.ones(1)
    for column in table[:, :4]:
        shifts = column - column.min()
        new = np.zeros(len(dist) + shifts.max())
        for s in shifts:
            new[s:s + len(dist)] += 0.25 * dist
        dist = new
    return low, np.cumsum(dist[::-1])[::-1]


def window_scores(table: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Binned score of every window of base codes (rows, length) -> (rows, length - width + 1)."""
    width = len(table)
    span = codes.shape[1] - width + 1
    total = np.zeros((codes.shape[0], max(span, 0)), np.int64)
    for j in range(width if span > 0 else 0):
        total += table[j][codes[:, j:j + span]]
    return total


def find_sites(ppm: np.ndarray, codes: np.ndarray, p_value: float = P_VALUE) -> Sites:
    """Every window of `codes` (rows, length) where the motif (either strand) has p <= p_value."""
    rows, starts, strands, ps = [], [], [], []
    for strand, matrix in ((1, ppm), (-1, np.asarray(ppm)[::-1, ::-1])):
        table = binned_log_odds(matrix)
        low, survival = score_p_values(table)
        scores = window_scores(table, codes)
        p = survival[np.clip(scores - low, 0, len(survival) - 1)]
        r, s = np.nonzero(p <= p_value)
        rows.append(r)
        starts.append(s)
        strands.append(np.full(len(r), strand, np.int8))
        ps.append(p[r, s])
    return Sites(*(np.concatenate(a) for a in (rows, starts, strands, ps)))
