"""Small array helpers shared by the stages: one-hot bases on the host, rows normalised with a
fallback, motif instances drawn from a PPM, power-of-two size buckets (so few programs get
compiled)."""
from __future__ import annotations

import numpy as np


def one_hot(bases: np.ndarray, dtype=np.float32) -> np.ndarray:
    """(..., N) base indices 0..3 -> (..., N, 4) one-hot, on the host."""
    return np.eye(4, dtype=dtype)[bases]


def normalise_rows(x, empty: float = 0.25, xp=np):
    """x divided by its sums over the last axis; rows that sum to 0 become `empty` (`xp`: numpy
    or jax.numpy)."""
    total = x.sum(-1, keepdims=True)
    return xp.where(total > 0, x / xp.where(total > 0, total, 1.0), empty)


def draw_instances(rng: np.random.Generator, ppm: np.ndarray, n: int) -> np.ndarray:
    """(n, len(ppm)) base indices, each column drawn from the PPM's column (forward strand)."""
    cum = np.cumsum(ppm, axis=1)
    return (rng.random((n, len(ppm), 1)) > cum[None, :, :3]).sum(-1)


def power_of_two(n: int, least: int) -> int:
    """The smallest power of two >= n, and at least `least`."""
    return max(least, 1 << (n - 1).bit_length())
