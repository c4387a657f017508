"""A tiny hand-built network with known motifs, for the decoder tests.

Layer 1 (width 10, pool 2): four filters that are log-odds PWMs of JASPAR motifs, biased so
that only good matches give f > 0. Layer 2 (width 3, no pool): neuron 0 reads filter 0 at its
middle kernel position only (so ELK1 at 2 shifts, 1 bp apart, the max-pool mixture); neuron 1
reads filter 1 at position 0 and filter 2 at position 2.
"""
from __future__ import annotations

import functools

import numpy as np

from nmjax.motifdb import jaspar_motif
from nmjax.network import ConvSpec, Network, NetworkConfig, check_params

PLANTED = ("MA0028.3", "MA0090.4", "MA0093.4", "MA0148.5")  # ELK1, TEAD1, USF1, FOXA1
WIDTH = 10


def log_odds(ppm: np.ndarray, width: int) -> np.ndarray:
    k = np.zeros((width, 4))
    k[:min(width, len(ppm))] = np.log2((ppm[:width] + 0.01) / 1.04 / 0.25)
    return k


def planted_consensus(matrix_id: str) -> str:
    return "".join("ACGT"[i] for i in jaspar_motif(matrix_id).ppm.argmax(1))


@functools.lru_cache(maxsize=1)
def toy_network() -> Network:
    """One shared instance, so test modules share the compiled programs."""
    w1 = np.stack([log_odds(jaspar_motif(m).ppm, WIDTH) for m in PLANTED], axis=-1)
    b1 = -0.4 * w1.max(1).sum(0)
    w2 = np.zeros((3, 4, 2))
    w2[1, 0, 0] = 1.0
    w2[0, 1, 1] = 1.0
    w2[2, 2, 1] = 1.0
    b2 = np.array([-0.5, -1.0])
    config = NetworkConfig(convs=(ConvSpec(WIDTH, 4, 4, "relu", pool=2),
                                  ConvSpec(3, 2, 4, "relu", pool=1)), source="toy")
    params = {"conv1": {"kernel": w1.astype(np.float32), "bias": b1.astype(np.float32)},
              "conv2": {"kernel": w2.astype(np.float32), "bias": b2.astype(np.float32)}}
    check_params(config, params, "toy network")
    return Network(config, params)


def best_offset(ppm: np.ndarray, matrix_id: str) -> tuple[int, float]:
    """Offset of the planted PFM in `ppm` with the highest mean probability of its consensus
    bases, and that mean probability."""
    cons = jaspar_motif(matrix_id).ppm.argmax(1)
    scores = [ppm[o + np.arange(len(cons)), cons].mean()
              for o in range(len(ppm) - len(cons) + 1)]
    return int(np.argmax(scores)), float(np.max(scores))
