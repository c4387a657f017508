"""What a decode gives: a neuron's decoupled subsets and a layer's neurons (small pytrees)."""
from __future__ import annotations

import dataclasses
import functools

import jax
import numpy as np

from .motifs import laplace


@functools.partial(jax.tree_util.register_dataclass,
                   data_fields=["ppms", "n", "act", "conact", "consensus"],
                   meta_fields=["layer", "neuron", "generations", "rounds"])
@dataclasses.dataclass(frozen=True)
class NeuronResult:
    """The decoded subsets of one neuron (S subsets; S = 0 for a dead neuron).

    ppms: (S, N, 4) activation-weighted PPMs (unsmoothed) over the receptive field;
    n: (S,) sequences per subset; act: (S,) max f; conact: (S,) f of the consensus;
    consensus: (S, N) uint8 bases (ACGT = 0..3). generations: GA generations (0 = enumerated).
    """

    ppms: np.ndarray
    n: np.ndarray
    act: np.ndarray
    conact: np.ndarray
    consensus: np.ndarray
    layer: int
    neuron: int
    generations: int
    rounds: int

    @property
    def dead(self) -> bool:
        return len(self.n) == 0

    def smoothed(self, pseudocount: float = 80.0) -> np.ndarray:
        """Laplace-smoothed PPMs (S, N, 4)."""
        return np.stack([laplace(p, n, pseudocount) for p, n in zip(self.ppms, self.n)]) \
            if len(self.n) else self.ppms


@dataclasses.dataclass(frozen=True)
class LayerResult:
    """Decoded neurons of one layer and how long they took."""

    layer: int
    neurons: dict[int, NeuronResult]
    rounds: int
    timings: dict


def pooled_ratio(act, conact) -> float:
    """A neuron's max conact / max act over its subsets (NaN where act is not positive): how
    close its best consensus comes to its best sample."""
    top = max(act)
    return max(conact) / top if top > 0 else float("nan")
