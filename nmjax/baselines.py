"""The motif estimators the paper compares against (none of them decouples shifts).

- kelley: mean one-hot of the sampled sequences with f > A/2 (A = max f), Kelley et al. 2016;
- alipanahi: mean one-hot of all sampled sequences with f > 0, Alipanahi et al. 2015;
- saliency: the input gradient df/dx at the best sampled sequence, turned into a PPM by keeping
  the positive part of the per-position mean-centred gradient (all-zero rows uniform).

They use the same samples as NeuronMotif, so `decode --method kelley` etc. write the same files
with one subset (S0) per neuron.
"""
from __future__ import annotations

import numpy as np

from .arrays import normalise_rows, one_hot
from .scoring import make_score_fn


def mean_onehot(bases: np.ndarray) -> np.ndarray:
    return one_hot(bases, np.float64).mean(0)


def saliency_ppm(net, layer: int, neuron: int, best: np.ndarray) -> np.ndarray:
    """PPM (N, 4) from df/dx at one sequence `best` (N,) bases."""
    score = make_score_fn(net, layer)
    x = one_hot(best)[None]
    _, g = score(net.params, x, neuron)
    g = np.asarray(g[0], np.float64)
    return normalise_rows(np.maximum(0.0, g - g.mean(1, keepdims=True)))


def baseline_ppm(method: str, net, layer: int, neuron: int, bases: np.ndarray, f: np.ndarray
                 ) -> np.ndarray:
    """One PPM (N, 4) of a neuron's samples (bases (M, N), f (M,) > 0) by a baseline method."""
    if method == "kelley":
        return mean_onehot(bases[f > f.max() / 2])
    if method == "alipanahi":
        return mean_onehot(bases)
    if method == "saliency":
        return saliency_ppm(net, layer, neuron, bases[np.argmax(f)])
    raise ValueError(f"unknown baseline {method!r}")
