"""Sampling sequences that activate a neuron (method-notes §1).

Two paths, both giving a deduplicated, capped `SampleSet` of (sequence, f) with f > 0:
- `enumerate_layer`: receptive fields under `DecodeConfig.enumerate_below` bp, all 4^N windows.
- `run_ga`: the gradient-guided genetic algorithm. One generation is ONE jitted function
  (`ga_generation`) over a `Population` pytree with an explicit PRNG key, vmapped over a batch of
  neurons of a layer, so one compiled program serves the whole layer; a slot whose neuron stops
  takes the layer's next neuron (`nmjax.slots`). Sample collection uses a
  fixed-size device buffer per generation (the evaluated population and its f); deduplication
  and the 20-bin stratified cap run on the host with numpy on packed bases. The initial
  population of layer l > 1 is seeded with layer l-1's motifs (`nmjax.seeding`).

Sequences are stored as base indices (A=0, C=1, G=2, T=3), uint8 on the host.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

from .motifs import value_bins
from .scoring import layer_precision, make_score_fn, make_value_fn
from .seeding import Seeding, no_seeding, seed_sequence

if TYPE_CHECKING:  # DecodeConfig lives in decode.py, which imports this module
    from .decode import DecodeConfig
    from .network import Network

MUTATION_RULES = ("reference", "paper", "continuous")


def population_size(receptive_field: int) -> int:
    """The paper's P = clip(floor(N / 20) * 1000, 2000, 5000)."""
    return int(np.clip(receptive_field // 20 * 1000, 2000, 5000))


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


def finish_samples(samples: SampleSet, config: "DecodeConfig", rng: np.random.Generator,
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
                    config: "DecodeConfig", batch: int = 1 << 15
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
        x = np.eye(4, dtype=np.float32)[bases]
        f = np.asarray(net.conv_output(x, layer))[:, 0, sel]
        valid = slice(0, min(batch, total - start))
        for k, s in enumerate(sets):
            s.add(bases[valid], f[valid, k])
    return [finish_samples(s, config, neuron_rng(k), config.cap_enumerated)
            for s, k in zip(sets, keys)]


# -- the genetic algorithm ----------------------------------------------------------------
@functools.partial(jax.tree_util.register_dataclass,
                   data_fields=["bases", "key", "best_mean", "stall", "generation", "done"],
                   meta_fields=[])
@dataclasses.dataclass(frozen=True)
class Population:
    """GA state of one neuron: bases (P, N) int8, PRNG key, stop-rule counters."""

    bases: jax.Array
    key: jax.Array
    best_mean: jax.Array
    stall: jax.Array
    generation: jax.Array
    done: jax.Array


@functools.partial(jax.tree_util.register_dataclass,
                   data_fields=["bases", "f", "active", "mean_f"], meta_fields=[])
@dataclasses.dataclass(frozen=True)
class Generation:
    """What one generation hands to the host: the evaluated population (fixed-size buffer)."""

    bases: jax.Array
    f: jax.Array
    active: jax.Array
    mean_f: jax.Array


@dataclasses.dataclass(frozen=True)
class GASettings:
    """Static (compile-time) settings of one layer's GA program."""

    population: int
    length: int
    shifts: int
    elite_fraction: float
    max_generations: int
    patience: int
    mutation: str
    precision: str


def mutation_distribution(x: jax.Array, g: jax.Array, rule: str) -> jax.Array:
    """Per-position base probabilities (P, N, 4) from the one-hot x and the gradient g."""
    if rule == "reference":  # q = max(0, x + g); all-zero rows uniform
        q = jnp.maximum(0.0, x + g)
    elif rule == "paper":  # as printed: g where g > 0, e^g where g < 0
        q = jnp.where(g > 0, g, jnp.exp(jnp.minimum(g, 0.0)))
    elif rule == "continuous":  # g + 1 where g >= 0, e^g where g < 0
        q = jnp.where(g >= 0, g + 1.0, jnp.exp(jnp.minimum(g, 0.0)))
    else:
        raise ValueError(f"unknown mutation rule {rule!r}; choose from {MUTATION_RULES}")
    total = q.sum(-1, keepdims=True)
    return jnp.where(total > 0, q / jnp.where(total > 0, total, 1.0), 0.25)


def draw_indices(key: jax.Array, p: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
    """Inverse-CDF draws from the last axis of probabilities/weights p (not normalised).

    One uniform per draw (jax.random.categorical draws one Gumbel per category and draw,
    which dominated a generation for roulette selection over thousands of parents). Entries of
    zero weight are never drawn and do not change the draws (K-means padding rows rely on it).
    """
    cdf = jnp.cumsum(p, axis=-1)
    u = jax.random.uniform(key, shape + p.shape[:-1]) * cdf[..., -1]
    if p.ndim == 1:
        idx = jnp.searchsorted(cdf, u, side="right", method="sort")
    else:
        idx = jnp.sum(cdf <= u[..., None], axis=-1)
    return jnp.minimum(idx, p.shape[-1] - 1)


def _rotate(bases: jax.Array, shift: jax.Array) -> jax.Array:
    """Rotate each row of (E, N) circularly left by shift[e]."""
    n = bases.shape[1]
    idx = (jnp.arange(n)[None, :] + shift[:, None]) % n
    return jnp.take_along_axis(bases, idx, axis=1)


def ga_generation(score, value, settings: GASettings, params, pop: Population,
                  neuron: jax.Array) -> tuple[Population, Generation]:
    """One GA generation of one neuron (method-notes §1, steps 1-6 and the stop rule).

    `score` gives the input gradient that sets the mutation probabilities, `value` the f of the
    mutated population that selection, the stop rule and the recorded samples use (both at
    `settings.precision`; the host loop re-scores the kept samples in float32).

    A finished population (`done`) is returned unchanged and its buffer marked inactive, until
    the host loop gives its slot the next neuron (`nmjax.slots`).
    """
    s = settings
    key, k_mut, k_shift, k_pa, k_pb, k_cut = jax.random.split(pop.key, 6)
    x = jax.nn.one_hot(pop.bases, 4, dtype=jnp.float32)
    _, g = score(params, x, neuron)
    q = mutation_distribution(x, g, s.mutation)
    new = draw_indices(k_mut, q).astype(jnp.int8)
    f = value(params, jax.nn.one_hot(new, 4, dtype=jnp.float32), neuron)

    mean_f = f.mean()
    improved = mean_f > pop.best_mean
    stall = jnp.where(improved, 0, pop.stall + 1)
    generation = pop.generation + 1
    done = (stall >= s.patience) | (generation >= s.max_generations)

    n_elite = max(1, int(s.elite_fraction * s.population))
    _, elite_idx = jax.lax.top_k(f, n_elite)
    elites = new[elite_idx]
    parts = [elites]
    if s.shifts > 1:
        shift = jax.random.randint(k_shift, (2, n_elite), 1, s.shifts)
        parts += [_rotate(elites, shift[0]), _rotate(elites, s.length - shift[1])]
    n_children = s.population - n_elite * len(parts)
    weight = jnp.where(f >= 0, f + 1.0, jnp.exp(jnp.minimum(f, 0.0)))
    pa = draw_indices(k_pa, weight, (n_children,))
    pb = draw_indices(k_pb, weight, (n_children,))
    cut = jax.random.randint(k_cut, (n_children, 1), 1, s.length)
    children = jnp.where(jnp.arange(s.length)[None, :] < cut, new[pa], new[pb])
    next_bases = jnp.concatenate(parts + [children])

    keep = pop.done
    out = Population(bases=jnp.where(keep, pop.bases, next_bases),
                     key=key,
                     best_mean=jnp.where(keep, pop.best_mean, jnp.maximum(pop.best_mean, mean_f)),
                     stall=jnp.where(keep, pop.stall, stall),
                     generation=jnp.where(keep, pop.generation, generation),
                     done=keep | done)
    return out, Generation(bases=new, f=f, active=~keep, mean_f=mean_f)


@functools.lru_cache(maxsize=16)
def _ga_step(net: "Network", layer: int, settings: GASettings):
    """The jitted, neuron-vmapped generation program of one layer (cached per net)."""
    score = make_score_fn(net, layer, precision=settings.precision)
    value = make_value_fn(net, layer, precision=settings.precision)
    return jax.jit(jax.vmap(functools.partial(ga_generation, score, value, settings),
                            in_axes=(None, 0, 0)))


@functools.lru_cache(maxsize=16)
def _ga_init(settings: GASettings, placement: tuple | None):
    """The jitted, neuron-vmapped initial population and the motifs written into each of its
    sequences (seeded by `seeding.seed_sequence` with `placement` unless it is None)."""

    def init_one(key, contribution, shared):
        k_bases, k_seed, k_run = jax.random.split(key, 3)
        bases = jax.random.randint(k_bases, (settings.population, settings.length), 0, 4
                                   ).astype(jnp.int8)
        placed = jnp.zeros(settings.population, jnp.int32)
        if placement is not None:
            seed_keys = jax.random.split(k_seed, settings.population)
            bases, placed = jax.vmap(functools.partial(seed_sequence, placement),
                                     in_axes=(0, 0, None, None))(seed_keys, bases, contribution,
                                                                 shared)
        return Population(bases=bases, key=k_run, best_mean=jnp.float32(-jnp.inf),
                          stall=jnp.int32(0), generation=jnp.int32(0),
                          done=jnp.bool_(False)), placed

    return jax.jit(jax.vmap(init_one, in_axes=(0, 0, None)))


def initial_population(settings: GASettings, keys: list[jax.Array],
                       seeding: Seeding | None = None) -> tuple[Population, jax.Array]:
    """The GA's first population of a batch of neurons (one key each), seeded when `seeding`
    is given, and the number of motifs written into each sequence (B, P)."""
    init = _ga_init(settings, None if seeding is None else seeding.placement)
    arrays = no_seeding(len(keys)) if seeding is None else seeding.device_arrays()
    return init(jnp.stack(keys), *arrays)


def motifs_placed(net: "Network", layer: int, neurons: list[int], keys: list[jax.Array],
                  config: "DecodeConfig", seeding: Seeding | None) -> np.ndarray:
    """(B, P) layer-(l-1) motifs written into each initial sequence of each neuron's GA: what
    `run_ga` starts from with these keys, config and seeding (zeros when unseeded)."""
    return np.asarray(initial_population(ga_settings(net, layer, config), keys, seeding)[1])


@functools.lru_cache(maxsize=16)
def _population_values(net: "Network", layer: int, settings: GASettings):
    """The jitted, neuron-vmapped f of a population of base indices (P, N)."""
    value = make_value_fn(net, layer, precision=settings.precision)
    return jax.jit(jax.vmap(lambda params, bases, neuron: value(
        params, jax.nn.one_hot(bases, 4, dtype=jnp.float32), neuron), in_axes=(None, 0, 0)))


def ga_settings(net: "Network", layer: int, config: "DecodeConfig") -> GASettings:
    n = net.receptive_field(layer)
    return GASettings(population=config.population or population_size(n), length=n,
                      shifts=net.shift_multiplicity(layer), elite_fraction=config.elite_fraction,
                      max_generations=config.max_generations, patience=config.patience,
                      mutation=config.mutation,
                      precision=layer_precision(net.config, layer, config.precision))


def run_ga(net: "Network", layer: int, neurons: list[int], keys: list[jax.Array],
           config: "DecodeConfig", seeding: Seeding | None = None, slots: int | None = None
           ) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[int]]:
    """Run the GA for neurons of one layer in one compiled program of `slots` neurons per call
    (default: all of them), a finished neuron's slot refilled with the next (`nmjax.slots`).

    Returns per neuron the (bases, f) sample set (deduplicated, capped, f descending) and the
    number of generations it ran.
    """
    from .slots import ga_stream

    results, generations = [None] * len(neurons), [0] * len(neurons)
    for i, samples, gens in ga_stream(net, layer, neurons, keys, config, seeding,
                                      slots or len(neurons)):
        results[i], generations[i] = samples, gens
    return results, generations


@functools.lru_cache(maxsize=16)
def _fp32_value(net: "Network", layer: int):
    return jax.jit(make_value_fn(net, layer))


def rescore(net: "Network", layer: int, neuron: int, bases: np.ndarray, batch: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """float32 f of kept samples scored in lower precision: (bases, f) with f > 0, f descending.

    Scored in batches of `batch` windows (the last one padded), so one compiled program serves
    every neuron of the layer.
    """
    value = _fp32_value(net, layer)
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
