"""The gradient-guided genetic algorithm (method-notes §1) as a state pytree, `init` and `step`.

One neuron's GA is a `GAState` (population, PRNG key, stop-rule counters). A generation is
`ask` (the mutated population, drawn from the input gradient of the current one), the caller's
scoring of it, and `tell` (selection, crossover, elite shifts and the stop rule); `step` runs the
three with a given score and value function. The compiled programs vmap it over a batch of
neurons of a layer, so one program serves the whole layer (`step_program`); the host loop that
feeds it is `nmjax.slots`.

Sequences are base indices (A=0, C=1, G=2, T=3), int8 on the device.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

from .arrays import normalise_rows
from .config import MUTATION_RULES
from .draws import draw_indices
from .programs import compiled
from .scoring import layer_precision, make_score_fn, make_value_fn
from .seeding import Seeding, no_seeding, seed_sequence

if TYPE_CHECKING:
    from .config import SamplingConfig
    from .network import Network


@functools.partial(jax.tree_util.register_dataclass,
                   data_fields=["bases", "key", "best_mean", "stall", "generation", "done"],
                   meta_fields=[])
@dataclasses.dataclass(frozen=True)
class GAState:
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
class GAConfig:
    """Static (compile-time) settings of one layer's GA program."""

    population: int
    length: int
    shifts: int
    elite_fraction: float
    max_generations: int
    patience: int
    mutation: str
    precision: str


def population_size(receptive_field: int) -> int:
    """The paper's P = clip(floor(N / 20) * 1000, 2000, 5000)."""
    return int(np.clip(receptive_field // 20 * 1000, 2000, 5000))


def ga_config(net: "Network", layer: int, config: "SamplingConfig") -> GAConfig:
    """The GA settings of `layer` under the decoder's `config`."""
    n = net.receptive_field(layer)
    return GAConfig(population=config.population or population_size(n), length=n,
                    shifts=net.shift_multiplicity(layer), elite_fraction=config.elite_fraction,
                    max_generations=config.max_generations, patience=config.patience,
                    mutation=config.mutation,
                    precision=layer_precision(net.config, layer, config.precision))


# -- one neuron ------------------------------------------------------------------------
def init(cfg: GAConfig, key: jax.Array, placement: tuple | None = None, contribution=None,
         shared=None) -> tuple[GAState, jax.Array]:
    """A neuron's first state, its random population seeded by `seeding.seed_sequence` with
    `placement` unless it is None, and the motifs written into each sequence (P,)."""
    k_bases, k_seed, k_run = jax.random.split(key, 3)
    bases = jax.random.randint(k_bases, (cfg.population, cfg.length), 0, 4).astype(jnp.int8)
    placed = jnp.zeros(cfg.population, jnp.int32)
    if placement is not None:
        seed_keys = jax.random.split(k_seed, cfg.population)
        bases, placed = jax.vmap(functools.partial(seed_sequence, placement),
                                 in_axes=(0, 0, None, None))(seed_keys, bases, contribution,
                                                             shared)
    return GAState(bases=bases, key=k_run, best_mean=jnp.float32(-jnp.inf),
                   stall=jnp.int32(0), generation=jnp.int32(0), done=jnp.bool_(False)), placed


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
    return normalise_rows(q, xp=jnp)


def _keys(state: GAState) -> jax.Array:
    """A generation's keys: the next state's, mutation, shift, parent a, parent b, cut."""
    return jax.random.split(state.key, 6)


def ask(cfg: GAConfig, state: GAState, x: jax.Array, g: jax.Array) -> jax.Array:
    """The mutated population (P, N) int8 drawn from the one-hot population x and the input
    gradient g of the neuron's score (steps 1-2)."""
    return draw_indices(_keys(state)[1], mutation_distribution(x, g, cfg.mutation)
                        ).astype(jnp.int8)


def _rotate(bases: jax.Array, shift: jax.Array) -> jax.Array:
    """Rotate each row of (E, N) circularly left by shift[e]."""
    n = bases.shape[1]
    idx = (jnp.arange(n)[None, :] + shift[:, None]) % n
    return jnp.take_along_axis(bases, idx, axis=1)


def _next_population(cfg: GAConfig, keys: jax.Array, new: jax.Array, f: jax.Array
                     ) -> jax.Array:
    """Elites, their random shifts (shift-mixing layers) and one-point crossover children of
    parents drawn by f (steps 3-6)."""
    _, _, k_shift, k_pa, k_pb, k_cut = keys
    n_elite = max(1, int(cfg.elite_fraction * cfg.population))
    _, elite_idx = jax.lax.top_k(f, n_elite)
    elites = new[elite_idx]
    parts = [elites]
    if cfg.shifts > 1:
        shift = jax.random.randint(k_shift, (2, n_elite), 1, cfg.shifts)
        parts += [_rotate(elites, shift[0]), _rotate(elites, cfg.length - shift[1])]
    n_children = cfg.population - n_elite * len(parts)
    weight = jnp.where(f >= 0, f + 1.0, jnp.exp(jnp.minimum(f, 0.0)))
    pa = draw_indices(k_pa, weight, (n_children,))
    pb = draw_indices(k_pb, weight, (n_children,))
    cut = jax.random.randint(k_cut, (n_children, 1), 1, cfg.length)
    children = jnp.where(jnp.arange(cfg.length)[None, :] < cut, new[pa], new[pb])
    return jnp.concatenate(parts + [children])


def tell(cfg: GAConfig, state: GAState, new: jax.Array, f: jax.Array
         ) -> tuple[GAState, Generation]:
    """The next state from the mutated population `new` and its f: selection, crossover and
    the stop rule (no better mean f for `patience` generations, or `max_generations`).

    A finished state (`done`) is returned unchanged and its buffer marked inactive, until the
    host loop gives its slot the next neuron (`nmjax.slots`).
    """
    keys = _keys(state)
    mean_f = f.mean()
    stall = jnp.where(mean_f > state.best_mean, 0, state.stall + 1)
    generation = state.generation + 1
    done = (stall >= cfg.patience) | (generation >= cfg.max_generations)
    next_bases = _next_population(cfg, keys, new, f)
    keep = state.done
    out = GAState(bases=jnp.where(keep, state.bases, next_bases),
                  key=keys[0],
                  best_mean=jnp.where(keep, state.best_mean,
                                      jnp.maximum(state.best_mean, mean_f)),
                  stall=jnp.where(keep, state.stall, stall),
                  generation=jnp.where(keep, state.generation, generation),
                  done=keep | done)
    return out, Generation(bases=new, f=f, active=~keep, mean_f=mean_f)


def step(score, value, cfg: GAConfig, params, state: GAState, neuron: jax.Array
         ) -> tuple[GAState, Generation]:
    """One generation of one neuron: `ask`, the f of the mutated population, `tell`.

    `score` gives the input gradient that sets the mutation probabilities, `value` the f that
    selection, the stop rule and the recorded samples use (both at `cfg.precision`; the host
    loop re-scores the kept samples in float32).
    """
    x = jax.nn.one_hot(state.bases, 4, dtype=jnp.float32)
    _, g = score(params, x, neuron)
    new = ask(cfg, state, x, g)
    return tell(cfg, state, new, value(params, jax.nn.one_hot(new, 4, dtype=jnp.float32), neuron))


# -- compiled programs over a batch of neurons -------------------------------------------
@compiled(maxsize=16)
def step_program(net: "Network", layer: int, cfg: GAConfig):
    """The jitted, neuron-vmapped generation program of one layer."""
    score = make_score_fn(net, layer, precision=cfg.precision)
    value = make_value_fn(net, layer, precision=cfg.precision)
    return jax.jit(jax.vmap(functools.partial(step, score, value, cfg), in_axes=(None, 0, 0)))


@compiled(maxsize=16)
def init_program(cfg: GAConfig, placement: tuple | None):
    """The jitted, neuron-vmapped `init`: (keys, contributions, shared seeding arrays)."""
    return jax.jit(jax.vmap(lambda key, contribution, shared: init(
        cfg, key, placement, contribution, shared), in_axes=(0, 0, None)))


@compiled(maxsize=16)
def values_program(net: "Network", layer: int, cfg: GAConfig):
    """The jitted, neuron-vmapped f of a population of base indices (P, N)."""
    value = make_value_fn(net, layer, precision=cfg.precision)
    return jax.jit(jax.vmap(lambda params, bases, neuron: value(
        params, jax.nn.one_hot(bases, 4, dtype=jnp.float32), neuron), in_axes=(None, 0, 0)))


def first_states(cfg: GAConfig, keys: list[jax.Array], seeding: Seeding | None = None
                 ) -> tuple[GAState, jax.Array]:
    """The first states of a batch of neurons (one key each), seeded when `seeding` is given,
    and the number of motifs written into each sequence (B, P)."""
    program = init_program(cfg, None if seeding is None else seeding.placement)
    arrays = no_seeding(len(keys)) if seeding is None else seeding.device_arrays()
    return program(jnp.stack(keys), *arrays)


def motifs_placed(net: "Network", layer: int, neurons: list[int], keys: list[jax.Array],
                  config: "SamplingConfig", seeding: Seeding | None) -> np.ndarray:
    """(B, P) layer-(l-1) motifs written into each initial sequence of each neuron's GA: what
    `nmjax.slots.run_ga` starts from with these keys, config and seeding (zeros when unseeded)."""
    return np.asarray(first_states(ga_config(net, layer, config), keys, seeding)[1])
