"""A neuron's samples on the host (method-notes §1): sequences with f > 0, deduplicated, capped.

Two paths, both giving a deduplicated, capped `SampleSet` of (sequence, f) with f > 0:
- `enumerate_layer`: receptive fields under `SamplingConfig.enumerate_below` bp, all 4^N windows.
- the gradient-guided genetic algorithm (`nmjax.ga`, run by `nmjax.slots.run_ga`), whose every
  generation hands its evaluated population to the host; deduplication and the 20-bin
  stratified cap run here with numpy on packed bases; `rescore` gives kept samples their
  float32 f when the GA ran in bf16.

Sequences are stored as base indices (A=0, C=1, G=2, T=3), uint8 on the host.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

from .arrays import one_hot
from .motifs import value_bins
from .programs import compiled
from .scoring import make_value_fn

if TYPE_CHECKING:
    from .config import SamplingConfig
    from .network import Network


# -- packed host-side sample sets ---------------------------------------------------------
def pack_bases(bases: np.ndarray) -> np.ndarray:
    """(M, N) bases 0..3 -> (M, ceil(N/4)) uint8, four bases per byte."""
    m, n = bases.shape
    width = -(-n // 4)
    padded = np.zeros((m, width * 4), np.uint8)
    padded[:, :n] = bases
    p = padded.reshape(m, width, 4)
    return (p[..., 0] | (p[..., 1] << 2) | (p[..., 2] << 4) | (p[..., 3] << 6)).astype(np.uint8)


def unpack_bases(packed: np.ndarray, length: int) -> np.ndarray:
    """Inverse of `pack_bases`."""
    shifts = np.array([0, 2, 4, 6], np.uint8)
    out = (packed[..., None] >> shifts) & 3
    return out.reshape(len(packed), packed.shape[1] * 4)[:, :length].astype(np.uint8)


@dataclasses.dataclass
class SampleSet:
    """Host accumulator of a neuron's samples: packed unique sequences and their f (> 0)."""

    length: int
    packed: np.ndarray
    f: np.ndarray

    @classmethod
    def empty(cls, length: int) -> "SampleSet":
        return cls(length, np.zeros((0, -(-length // 4)), np.uint8), np.zeros(0, np.float32))

    def add(self, bases: np.ndarray, f: np.ndarray) -> None:
        keep = f > 0
        if keep.any():
            self.packed = np.concatenate([self.packed, pack_bases(bases[keep])])
            self.f = np.concatenate([self.f, f[keep].astype(np.float32)])

    def deduplicate(self) -> None:
        if len(self.f) == 0:
            return
        rows = np.ascontiguousarray(self.packed).view(np.dtype((np.void, self.packed.shape[1])))
        _, first = np.unique(rows.ravel(), return_index=True)
        self.packed, self.f = self.packed[first], self.f[first]

    def cap(self, max_samples: int, bins: int, per_bin: int, rng: np.random.Generator) -> None:
        """Keep at most `per_bin` random sequences per equal-width bin of (0, max f]."""
        if len(self.f) <= max_samples:
            return
        b = value_bins(self.f, self.f.max(), bins)
        keep = []
        for i in range(bins):
            idx = np.flatnonzero(b == i)
            if len(idx) > per_bin:
                idx = np.sort(rng.choice(idx, per_bin, replace=False))
            keep.append(idx)
        keep = np.sort(np.concatenate(keep))
        self.packed, self.f = self.packed[keep], self.f[keep]

    def bases(self) -> np.ndarray:
        return unpack_bases(self.packed, self.length)


def finish_samples(samples: SampleSet, config: "SamplingConfig", rng: np.random.Generator,
                   cap: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Deduplicate and (if `cap`) cap; return (bases (M, N) uint8, f (M,) float32) sorted by f
    descending."""
    samples.deduplicate()
    if cap:
        samples.cap(config.max_samples, config.sample_bins, config.per_bin, rng)
    order = np.argsort(-samples.f, kind="stable")
    return samples.bases()[order], samples.f[order]


def neuron_rng(key: jax.Array) -> np.random.Generator:
    """A numpy generator determined by a neuron's JAX key (host-side random choices)."""
    return np.random.default_rng(np.asarray(jax.random.key_data(key)).astype(np.uint64).tolist())


# -- exhaustive enumeration --------------------------------------------------------------
def enumerate_layer(net: "Network", layer: int, neurons: list[int], keys: list[jax.Array],
                    config: "SamplingConfig", batch: int = 1 << 15
                    ) -> list[tuple[np.ndarray, np.ndarray]]:
    """All 4^N windows of a short receptive field; per neuron the (bases, f) with f > 0, capped
    unless `config.cap_enumerated` is False (the authors keep every one)."""
    n = net.receptive_field(layer)
    total = 4 ** n
    sets = [SampleSet.empty(n) for _ in neurons]
    sel = np.asarray(neurons)
    digits = 4 ** np.arange(n - 1, -1, -1, dtype=np.int64)
    for start in range(0, total, batch):
        codes = np.arange(start, start + batch, dtype=np.int64) % total  # last batch wraps: fixed shape
        bases = ((codes[:, None] // digits) % 4).astype(np.uint8)
        x = one_hot(bases)
        f = np.asarray(net.conv_output(x, layer))[:, 0, sel]
        valid = slice(0, min(batch, total - start))
        for k, s in enumerate(sets):
            s.add(bases[valid], f[valid, k])
    return [finish_samples(s, config, neuron_rng(k), config.cap_enumerated)
            for s, k in zip(sets, keys)]


@compiled(maxsize=16)
def fp32_value_program(net: "Network", layer: int):
    """The jitted float32 f of a batch of one-hot windows of one neuron of `layer`."""
    return jax.jit(make_value_fn(net, layer))


def rescore(net: "Network", layer: int, neuron: int, bases: np.ndarray, batch: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """float32 f of kept samples scored in lower precision: (bases, f) with f > 0, f descending.

    Scored in batches of `batch` windows (the last one padded), so one compiled program serves
    every neuron of the layer.
    """
    value = fp32_value_program(net, layer)
    f = np.zeros(len(bases), np.float32)
    for start in range(0, len(bases), batch):
        piece = bases[start:start + batch]
        padded = np.zeros((batch, bases.shape[1]), np.uint8)
        padded[:len(piece)] = piece
        x = jax.nn.one_hot(jnp.asarray(padded), 4, dtype=jnp.float32)
        f[start:start + len(piece)] = np.asarray(value(net.params, x, jnp.int32(neuron)))[:len(piece)]
    keep = np.flatnonzero(f > 0)
    order = keep[np.argsort(-f[keep], kind="stable")]
    return bases[order], f[order]
