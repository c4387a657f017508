"""Seeding the GA of layer l with the decoded motifs of layer l-1 (method-notes §1, initialisation).

Each initial sequence of a neuron of layer l gets p_{l-1} draws of a (kernel position i,
neuron j of layer l-1) pair with probability c_ij = max(0, w_ij * A_j) (normalised), and the
consensus of neuron j's decoupled motif(s) is written at offset (i * p_{l-1} + a random shift
below p_{l-1}) * S_{l-1}. Two rules (`SamplingConfig.seeding`):

- 'window' (default): pairs drawn independently by c; one random subset of neuron j is written
  where its whole N_{l-1} window overlaps no motif placed before. With kernel 3 and pool 2
  (BD-10, DD-10) any two windows of layer l-1 inside one layer-l window overlap, so at most
  one motif is placed per sequence.
- 'authors' (the authors' code): c flattened into 20 equal-mass value bins (`equal_mass`),
  p_{l-1} distinct pairs; for each, the consensus of EVERY subset of neuron j, in random order,
  each at its own random shift. Only the informative core of a placed motif (its first to last
  position with IC > 1 bit, when it has at least 4 such positions; `motif_cores`) is protected:
  a subset whose core overlaps a protected core is skipped, any other is written around the
  protected positions, and protects its own core if its consensus activates its neuron (conact
  > 0). Two cores fit side by side in one layer-l window, so two motifs are placed.

The per-sequence functions are pure JAX (vmapped over the population by `sampling`); the
arrays they read are built on the host by `seeding_for`.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

from .arrays import normalise_rows
from .motifs import information_content, value_bins

if TYPE_CHECKING:
    from .results import LayerResult
    from .network import Network

CONTRIBUTION_BINS = 20  # the authors' equal-mass bins of c
MIN_CORE = 4            # the authors' motif: more than 3 positions with IC > 1


@dataclasses.dataclass(frozen=True)
class Seeding:
    """Motifs of layer l-1 to seed a batch of neurons of layer l.

    contribution: (B, k_l * C_{l-1}) normalised c_ij per neuron (a zero row: no seeding);
    consensus: (C_{l-1}, S_max, N_{l-1}) int8 consensus bases of each neuron's subsets;
    n_subsets: (C_{l-1},) int32 (0 for dead or undecoded neurons);
    core: (C_{l-1}, S_max, 2) int32 start, end (exclusive) of each subset's informative core
    (0, 0: none); protect: (C_{l-1}, S_max) bool, the core is protected once written ('authors').
    """

    contribution: np.ndarray
    consensus: np.ndarray
    n_subsets: np.ndarray
    core: np.ndarray
    protect: np.ndarray
    prev_pool: int
    prev_shifts: int
    rule: str = "window"

    @property
    def placement(self) -> tuple[str, int, int, int]:
        """The static settings of the seeding program: (rule, draws, prev_pool, prev_shifts)."""
        return self.rule, self.prev_pool, self.prev_pool, self.prev_shifts

    def device_arrays(self) -> tuple[jax.Array, tuple[jax.Array, ...]]:
        """(contribution per neuron, (consensus, n_subsets, core, protect) shared by the batch)."""
        return (jnp.asarray(self.contribution, jnp.float32),
                (jnp.asarray(self.consensus, jnp.int8), jnp.asarray(self.n_subsets, jnp.int32),
                 jnp.asarray(self.core, jnp.int32), jnp.asarray(self.protect, bool)))


def no_seeding(batch: int) -> tuple[jax.Array, tuple[jax.Array, ...]]:
    """Placeholder arrays of `Seeding.device_arrays` for an unseeded batch of neurons."""
    return jnp.zeros((batch, 1)), (jnp.zeros((1, 1, 1), jnp.int8), jnp.zeros(1, jnp.int32),
                                   jnp.zeros((1, 1, 2), jnp.int32), jnp.zeros((1, 1), bool))


def equal_mass(c: np.ndarray, bins: int = CONTRIBUTION_BINS) -> np.ndarray:
    """The authors' flattening of each row of c (B, K) >= 0: (0, max] split into `bins` equal
    bins, each bin given mass 1/bins shared in proportion to c, an empty bin's mass given to the
    nearest non-empty bin above it (the top bin holds the maximum). Rows of zeros stay zero."""
    out = np.zeros(c.shape, np.float64)
    for row, w in zip(out, np.asarray(c, np.float64)):
        pos = np.flatnonzero(w > 0)
        if len(pos) == 0:
            continue
        b = value_bins(w[pos], w[pos].max(), bins)
        totals = np.bincount(b, weights=w[pos], minlength=bins)
        filled = np.flatnonzero(totals > 0)
        owner = filled[np.searchsorted(filled, np.arange(bins))]  # nearest filled bin >= i
        mass = np.bincount(owner, minlength=bins) / bins
        row[pos] = w[pos] / totals[b] * mass[b]
    return out


def motif_cores(ppms: np.ndarray) -> np.ndarray:
    """(S, 2) start, end (exclusive) of the informative core of each PPM (S, N, 4): its first
    to last position with IC > 1 bit, or (0, 0) when fewer than MIN_CORE positions have it."""
    cores = np.zeros((len(ppms), 2), np.int32)
    for s, ppm in enumerate(ppms):
        informative = np.flatnonzero(information_content(ppm) > 1.0)
        if len(informative) >= MIN_CORE:
            cores[s] = informative[0], informative[-1] + 1
    return cores


def seeding_for(net: "Network", layer: int, neurons: list[int], below: "LayerResult | None",
                rule: str = "window") -> Seeding | None:
    """Seeding of `neurons` of layer `layer` from the decoded motifs of layer-1 (None: random)."""
    if layer == 1 or below is None:
        return None
    prev = net.channels(layer - 1)
    results = [below.neurons.get(j) for j in range(prev)]
    width = net.receptive_field(layer - 1)
    s_max = max([len(r.n) for r in results if r is not None] + [1])
    consensus = np.zeros((prev, s_max, width), np.int8)
    core = np.zeros((prev, s_max, 2), np.int32)
    protect = np.zeros((prev, s_max), bool)
    n_subsets = np.zeros(prev, np.int32)
    strength = np.zeros(prev)
    for j, r in enumerate(results):
        if r is not None and not r.dead:
            s = len(r.n)
            consensus[j, :s], core[j, :s], protect[j, :s] = (r.consensus, motif_cores(r.ppms),
                                                              r.conact > 0)
            n_subsets[j] = s
            strength[j] = max(0.0, float(np.sum(r.act)))
    kernel = np.asarray(net.params[f"conv{layer}"]["kernel"])  # (k, C_{l-1}, C_l)
    c = np.maximum(0.0, kernel[:, :, neurons] * strength[None, :, None])
    c = normalise_rows(c.reshape(-1, len(neurons)).T, empty=0.0)
    if rule == "authors":
        c = equal_mass(c)
    return Seeding(c, consensus, n_subsets, core, protect, net.pools[layer - 2],
                   net.shift_multiplicity(layer - 1), rule)


# -- one sequence (pure JAX) ----------------------------------------------------------------
def seed_windows(key, bases, contribution, shared, draws, prev_pool, prev_shifts):
    """The 'window' rule on one sequence: (bases, motifs written)."""
    consensus, n_subsets, _, _ = shared
    n = bases.shape[0]
    channels, _, width = consensus.shape
    occupied = jnp.zeros(n, bool)
    pos = jnp.arange(n)
    use = contribution.sum() > 0
    log_c = jnp.log(jnp.where(use, contribution, 1.0))
    count = jnp.int32(0)
    for k in jax.random.split(key, draws):
        k_pair, k_shift, k_sub = jax.random.split(k, 3)
        pair = jax.random.categorical(k_pair, log_c)
        i, j = pair // channels, pair % channels
        offset = (i * prev_pool + jax.random.randint(k_shift, (), 0, prev_pool)) * prev_shifts
        sub = jax.random.randint(k_sub, (), 0, jnp.maximum(n_subsets[j], 1))
        placed = jax.lax.dynamic_update_slice(jnp.zeros(n, jnp.int8), consensus[j, sub], (offset,))
        region = (pos >= offset) & (pos < offset + width)
        ok = ~jnp.any(region & occupied) & use & (n_subsets[j] > 0)
        bases = jnp.where(region & ok, placed, bases)
        occupied = occupied | (region & ok)
        count = count + ok
    return bases, count


def seed_cores(key, bases, contribution, shared, draws, prev_pool, prev_shifts):
    """The 'authors' rule on one sequence: (bases, motifs written)."""
    consensus, n_subsets, core, protect = shared
    n = bases.shape[0]
    channels, s_max, width = consensus.shape
    draws = min(draws, contribution.shape[0])
    k_pairs, k_order, k_shift = jax.random.split(key, 3)
    use = contribution > 0
    score = jnp.where(use, jnp.log(jnp.where(use, contribution, 1.0))
                      + jax.random.gumbel(k_pairs, contribution.shape), -jnp.inf)
    pairs = jax.lax.top_k(score, draws)[1]  # distinct pairs drawn by c (Gumbel top-k)
    order = jax.vmap(lambda k: jax.random.permutation(k, s_max))(jax.random.split(k_order, draws))
    shifts = jax.random.randint(k_shift, (draws, s_max), 0, prev_pool)
    pos = jnp.arange(n)

    def place(t, state):
        bases, protected, count = state
        d, sub = t // s_max, order[t // s_max, t % s_max]
        i, j = pairs[d] // channels, pairs[d] % channels
        offset = (i * prev_pool + shifts[d, t % s_max]) * prev_shifts
        in_core = (pos >= offset + core[j, sub, 0]) & (pos < offset + core[j, sub, 1])
        ok = use[pairs[d]] & (sub < n_subsets[j]) & ~jnp.any(in_core & protected)
        placed = jax.lax.dynamic_update_slice(jnp.zeros(n, jnp.int8), consensus[j, sub], (offset,))
        region = (pos >= offset) & (pos < offset + width)
        bases = jnp.where(region & ok & ~protected, placed, bases)
        return bases, protected | (in_core & ok & protect[j, sub]), count + ok

    bases, _, count = jax.lax.fori_loop(0, draws * s_max, place,
                                        (bases, jnp.zeros(n, bool), jnp.int32(0)))
    return bases, count


def seed_sequence(placement, key, bases, contribution, shared):
    """Seed one sequence by `placement` = (rule, draws, prev_pool, prev_shifts)."""
    rule, draws, prev_pool, prev_shifts = placement
    seed = seed_cores if rule == "authors" else seed_windows
    return seed(key, bases, contribution, shared, draws, prev_pool, prev_shifts)
