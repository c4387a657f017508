"""The GA's host loop: a fixed number of neuron slots, each refilled as its neuron stops.

One call of a layer's compiled generation program (`nmjax.ga.step_program`) advances `slots`
populations by one generation. Neurons stop after different numbers of generations (the stop
rule), and a stopped population is carried unchanged and inactive; without refilling, a batch
waits for its slowest neuron. Here a stopped slot takes the next neuron of the layer at once (its
initial population is written into that slot), so slots idle only when no neuron is left.

A neuron's trajectory depends only on its PRNG key, its seeding and its own generation count
(the sample cap runs every `cap_every` of its own generations), not on its slot or its
neighbours, so the samples are those of one neuron per call whatever the number of slots.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Iterator

import jax
import jax.numpy as jnp
import numpy as np

from . import devices, ga
from .ga import Generation
from .sampling import SampleSet, finish_samples, neuron_rng, rescore
from .seeding import Seeding, no_seeding

if TYPE_CHECKING:
    from .config import SamplingConfig
    from .network import Network


@dataclasses.dataclass
class SlotUsage:
    """Slot-generations of a GA run: every slot of every call, and those spent idle (a slot
    whose neuron had stopped, or that had no neuron left to take)."""

    slot_generations: int = 0
    idle_generations: int = 0


@jax.jit
def _put_slot(state, fresh, slot):
    """Write the one-neuron `fresh` state (leading axis 1) into row `slot` of every leaf."""
    return jax.tree_util.tree_map(
        lambda a, b: jax.lax.dynamic_update_index_in_dim(a, b[0], slot, 0), state, fresh)


def _initialiser(cfg, seeding: Seeding | None):
    """fresh(key, i): the initial one-neuron population of the i-th neuron to decode."""
    init = ga.init_program(cfg, None if seeding is None else seeding.placement)
    contribution, shared = no_seeding(1) if seeding is None else seeding.device_arrays()
    if seeding is None:
        return lambda key, i: init(key[None], contribution, shared)[0]
    return lambda key, i: init(key[None], contribution[i:i + 1], shared)[0]


def _first_slots(fresh, keys, neurons, slots):
    """The starting (population, neuron ids) of `slots` slots: the first neurons, and slots
    beyond the neurons to decode marked finished (idle from the start)."""
    firsts = [fresh(keys[min(k, len(neurons) - 1)], min(k, len(neurons) - 1))
              for k in range(slots)]
    pop = jax.tree_util.tree_map(lambda *a: jnp.concatenate(a), *firsts)
    idle = jnp.arange(slots) >= len(neurons)
    pop = dataclasses.replace(pop, done=pop.done | idle)
    ids = jnp.asarray([neurons[min(k, len(neurons) - 1)] for k in range(slots)], jnp.int32)
    return devices.shard_neurons((pop, ids))


class _Samples:
    """The host side of a GA run: each neuron's growing sample set, capped as it grows, handed
    over (and dropped) when its neuron stops."""

    def __init__(self, net, layer, neurons, keys, config, cfg, usage, slots):
        self.net, self.layer, self.neurons, self.config, self.cfg = net, layer, neurons, config, cfg
        self.sets = [SampleSet.empty(cfg.length) for _ in neurons]
        self.rngs = [neuron_rng(k) for k in keys]
        self.usage, self.slots = usage, slots
        self.values = (ga.values_program(net, layer, cfg)
                       if config.keep_initial_population else None)

    def add(self, i: int, bases, f, may_cap: bool = True) -> None:
        config, s = self.config, self.sets[i]
        s.add(bases, f)
        if may_cap and len(s.f) > config.max_samples:
            s.deduplicate()
            s.cap(config.max_samples, config.sample_bins, config.per_bin, self.rngs[i])

    def keep_initial(self, slot_pop, slot_ids, owners) -> None:
        """The authors' reading: each neuron's initial population joins its sample set."""
        if self.values is None:
            return
        bases = np.asarray(slot_pop.bases)
        f0 = np.asarray(self.values(self.net.params, slot_pop.bases, slot_ids))
        for k, i in enumerate(owners):
            if i is not None:
                self.add(i, bases[k], f0[k])

    def collect(self, out: Generation, owners, generations, stopped):
        """Add one generation's samples; finish the neurons that stopped with it."""
        bases, f, active = np.asarray(out.bases), np.asarray(out.f), np.asarray(out.active)
        self.usage.slot_generations += self.slots
        self.usage.idle_generations += int(self.slots - active.sum())
        for k in np.flatnonzero(active):
            i = owners[k]
            self.add(i, bases[k], f[k], generations[k] % self.config.cap_every == 0)
            if stopped[k]:  # hand the samples over and drop the host accumulator
                done, self.sets[i] = self.sets[i], None
                yield i, _finish(self.net, self.layer, self.neurons[i], done, self.rngs[i],
                                 self.config, self.cfg), int(generations[k])


def ga_stream(net: "Network", layer: int, neurons: list[int], keys: list[jax.Array],
              config: "SamplingConfig", seeding: Seeding | None = None, slots: int = 1,
              usage: SlotUsage | None = None
              ) -> Iterator[tuple[int, tuple[np.ndarray, np.ndarray], int]]:
    """Run the GA for `neurons` of one layer through `slots` slots of one compiled program.

    Yields (index into `neurons`, (bases, f) deduplicated, capped, f descending, generations)
    as each neuron stops; `seeding.contribution` has one row per neuron. `usage` counts the
    slot-generations spent.
    """
    if not neurons:
        return
    cfg = ga.ga_config(net, layer, config)
    step = ga.step_program(net, layer, cfg)  # looked up here: tests wrap it
    fresh = _initialiser(cfg, seeding)
    samples = _Samples(net, layer, neurons, keys, config, cfg,
                       usage if usage is not None else SlotUsage(), slots)
    pop, ids = _first_slots(fresh, keys, neurons, slots)
    owner = [k if k < len(neurons) else None for k in range(slots)]
    upcoming = iter(range(slots, len(neurons)))
    samples.keep_initial(pop, ids, owner)
    pending = None
    while True:
        pop, out = step(net.params, pop, ids)  # dispatched: runs while the host
        if pending is not None:               # collects the previous generation
            yield from samples.collect(*pending)
        stopped = np.asarray(pop.done)
        pending = (out, list(owner), np.asarray(pop.generation), stopped)
        for k in np.flatnonzero(stopped):
            if owner[k] is None:
                continue
            owner[k] = next(upcoming, None)
            if owner[k] is not None:
                i = owner[k]
                started = (fresh(keys[i], i), jnp.asarray([neurons[i]], jnp.int32))
                samples.keep_initial(*started, [i])
                pop, ids = _put_slot((pop, ids), started, k)
        if all(o is None for o in owner):
            break
    yield from samples.collect(*pending)


def _finish(net, layer, neuron, samples, rng, config, cfg):
    """A stopped neuron's (bases, f): deduplicated, capped, re-scored in float32 when the GA
    ran in lower precision."""
    bases, f = finish_samples(samples, config, rng)
    if cfg.precision != "fp32":
        return rescore(net, layer, neuron, bases, cfg.population)
    return bases, f


def run_ga(net: "Network", layer: int, neurons: list[int], keys: list[jax.Array],
           config: "SamplingConfig", seeding: Seeding | None = None, slots: int | None = None
           ) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[int]]:
    """Run the GA for neurons of one layer in one compiled program of `slots` neurons per call
    (default: all of them), a finished neuron's slot refilled with the next (`nmjax.slots`).

    Returns per neuron the (bases, f) sample set (deduplicated, capped, f descending) and the
    number of generations it ran.
    """
    results, generations = [None] * len(neurons), [0] * len(neurons)
    for i, samples, gens in ga_stream(net, layer, neurons, keys, config, seeding,
                                      slots or len(neurons)):
        results[i], generations[i] = samples, gens
    return results, generations
