"""Decode neurons into motifs, layer by layer (method-notes §1-4), with atomic, resumable output.

    decode_neuron(net, layer, neuron, key)   one neuron -> NeuronResult (in memory)
    decode_layer(net, layer, ...)            neurons of one layer -> LayerResult (+ files)
    decode(net, layers=..., out=...)         several layers, each seeded by the one below

Each neuron's PRNG key is fold_in(fold_in(key(seed), layer), neuron), and a neuron's samples do
not depend on which neurons share a call of the GA program (nmjax.slots), so a resumed run
gives the same output as an uninterrupted one. The batch is spread over the local devices and
fitted to a memory budget (nmjax.devices), and a layer can be split into shards run on several
machines, then merged (nmjax.distribute).

The output folder's layout, names and files: nmjax.runfolder. A neuron's subsets from its
samples: nmjax.summarise.
"""
from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping
from pathlib import Path

import jax
import numpy as np

from . import devices, ga, programs, sampling
from .config import DecodeConfig
from .errors import NmjaxError
from .results import LayerResult, NeuronResult
from .runfolder import (StoredSamples, check_same_run, layer_dir, load_layer, sample_path,
                        sample_sizes, update_run, write_layer, write_samples)
from .seeding import seeding_for
from .slots import SlotUsage, ga_stream
from .summarise import summarise_rounds


def neuron_key(seed: int, layer: int, neuron: int) -> jax.Array:
    return jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), layer), neuron)


def sample_stream(net, layer: int, neurons: list[int], keys: list[jax.Array],
                  config: DecodeConfig, below: LayerResult | None, slots: int,
                  usage: SlotUsage | None = None):
    """Samples of `neurons` of one layer as each is done: (index into `neurons`, (bases, f),
    generations). Enumerated in chunks of `slots` neurons, or sampled by the GA in `slots`
    slots of one compiled program, each refilled with the next neuron when its neuron stops."""
    if net.receptive_field(layer) < config.enumerate_below:
        for start in range(0, len(neurons), slots):
            chunk = slice(start, start + slots)
            sets = sampling.enumerate_layer(net, layer, neurons[chunk], keys[chunk], config)
            for i, samples in enumerate(sets, start):
                yield i, samples, 0
        return
    seeding = (seeding_for(net, layer, neurons, below, config.seeding)
               if config.seed_from_previous else None)
    yield from ga_stream(net, layer, neurons, keys, config, seeding, slots, usage)


def decode_neuron(net, layer: int, neuron: int, key: jax.Array | int = 0,
                  config: DecodeConfig = DecodeConfig(), below: LayerResult | None = None
                  ) -> NeuronResult:
    """Decode one neuron in memory. `key` is a seed int (the key `decode` would use for this
    neuron) or a JAX key; `below` (layer-1's result) seeds the GA.

    With rounds='auto' the t-test rule runs on this neuron alone (mean ratio > threshold).
    """
    if isinstance(key, int):
        key = neuron_key(key, layer, neuron)
    net.neurons_of(layer, [neuron])
    [(_, (bases, f), generations)] = sample_stream(net, layer, [neuron], [key], config, below, 1)
    results, _, _ = summarise_rounds(net, layer, {neuron: (bases, f, generations)}, {neuron: key},
                                  config)
    return results[neuron]


def first_round_config(config: DecodeConfig) -> DecodeConfig:
    """The config that decouples with the first rounds a layer tries (1 under the t-test rule):
    what a shard computes before the layer-level rule can be applied at merge."""
    return dataclasses.replace(config, rounds=1) if config.rounds == "auto" else config


# -- a layer ----------------------------------------------------------------------------
def requested_layers(net, layers: list[int] | None) -> list[int]:
    """The sorted conv layers to decode (None = all); a clear error for a missing one."""
    layers = sorted(set(layers or range(1, net.num_conv_layers + 1)))
    for l in layers:
        net.check_layer(l)
    return layers


def clipped_neurons(net, layer: int, neurons: list[int] | None) -> list[int] | None:
    """A run's `--neurons` selection (None = all) clipped to the width of `layer`; an error if
    none of them exists there."""
    if neurons is None:
        return None
    sel = [n for n in neurons if n < net.channels(layer)]
    if not sel:
        raise NmjaxError(f"none of the requested neurons exist in layer {layer} "
                         f"({net.channels(layer)} neurons)")
    return sel


def sample_layer(net, layer: int, neurons: list[int], seed: int, config: DecodeConfig,
                 d: Path | None, below: LayerResult | None, progress: bool
                 ) -> tuple[Mapping[int, tuple], dict]:
    """Samples (bases, f, generations) of `neurons`, and the sampling timings. With a layer
    folder `d` each neuron's samples are written to d/samples as soon as they are done, and
    are returned as `StoredSamples` (read back one neuron at a time; files already there are
    reused); without, in memory."""
    from tqdm import tqdm

    todo = [n for n in neurons if d is None or not sample_path(d, n).exists()]
    timings = _sampling_settings(net, layer, config, neurons)
    samples = {}
    usage = SlotUsage()
    t0 = time.perf_counter()
    with tqdm(total=len(neurons), initial=len(neurons) - len(todo),
              desc=f"layer {layer} sampling", unit="neuron", disable=not progress) as bar:
        if todo:
            slots = devices.neuron_batch(net, layer, config, len(todo))
            for i, (bases, f), g in sample_stream(net, layer, todo,
                                                  [neuron_key(seed, layer, n) for n in todo],
                                                  config, below, slots, usage):
                if d is None:
                    samples[todo[i]] = (bases, f, g)
                else:
                    write_samples(sample_path(d, todo[i]), layer, todo[i], bases, f, g,
                                  config.method)
                bar.update(1)
    timings.update({"neurons_sampled_this_run": len(todo),
                    "sampling_seconds": time.perf_counter() - t0,
                    "slot_generations": usage.slot_generations,
                    "idle_slot_generations": usage.idle_generations})
    if d is not None:
        return StoredSamples(d, neurons), timings
    return {n: samples[n] for n in neurons}, timings


def _sampling_settings(net, layer: int, config: DecodeConfig, neurons: list[int]) -> dict:
    """How a layer is sampled: the part of its run.json entry known before sampling."""
    enumerated = net.receptive_field(layer) < config.enumerate_below
    return {"receptive_field": net.receptive_field(layer), "neurons": len(neurons),
            "method": config.method, "sampling": "enumeration" if enumerated else "ga",
            "population": 0 if enumerated
            else ga.ga_config(net, layer, config).population,
            "neurons_per_call": devices.neuron_batch(net, layer, config, len(neurons)),
            "neurons_per_compiled_program": len(neurons),
            "devices": devices.device_count(), "memory_budget": config.memory_budget}


def finish_layer(net, layer: int, samples: Mapping[int, tuple], seed: int, config: DecodeConfig,
                 out: Path | None, progress: bool, model: str, timings: dict) -> LayerResult:
    """Decouple every neuron's samples with the layer's rounds rule (reusing parts/ in `out`),
    and write the layer files and run.json when `out` is given."""
    neurons = sorted(samples)
    folder = layer_dir(out, layer) if out is not None else None
    t0 = time.perf_counter()
    results, rounds, tests = summarise_rounds(net, layer, samples,
                                              {n: neuron_key(seed, layer, n) for n in neurons},
                                              config, folder, progress)
    t_decouple = time.perf_counter() - t0
    sizes = sample_sizes(samples)
    gens, kept = zip(*(sizes[n] for n in neurons))
    timings = dict(timings)
    timings.update({
        "neurons": len(neurons), "neurons_per_compiled_program": len(neurons),
        "generations": {"min": int(min(gens)), "mean": float(np.mean(gens)),
                        "max": int(max(gens))},
        "samples_kept": {"min": int(min(kept)), "mean": float(np.mean(kept)),
                         "max": int(max(kept))},
        "dead_neurons": int(sum(r.dead for r in results.values())),
        "subsets": int(sum(len(r.n) for r in results.values())),
        "rounds_tests": tests,
        "seconds_sampling_per_neuron": timings["sampling_seconds"]
        / max(timings["neurons_sampled_this_run"], 1),
        "seconds_decoupling_per_neuron": t_decouple / len(neurons)})
    result = LayerResult(layer, results, rounds, timings)
    if out is not None:
        write_layer(out, result, config)
        update_run(out, seed, config, model, result)
    return result


def decode_layer(net, layer: int, neurons: list[int] | None = None, seed: int = 0,
                 config: DecodeConfig = DecodeConfig(), out: str | os.PathLike | None = None,
                 below: LayerResult | None = None, progress: bool = True,
                 model: str = "") -> LayerResult:
    """Decode `neurons` (default all) of `layer`, seeded by `below` (layer-1's result).

    With `out`, every neuron's samples and decoupled subsets are written atomically as they
    finish and reused by a rerun; the layer files are assembled at the end.
    """
    neurons = net.neurons_of(layer, neurons)
    out = Path(out) if out is not None else None
    folder = layer_dir(out, layer) if out is not None else None
    samples, timings = sample_layer(net, layer, neurons, seed, config, folder, below, progress)
    return finish_layer(net, layer, samples, seed, config, out, progress, model, timings)


def decode(net, layers: list[int] | None = None, neurons: list[int] | None = None,
           seed: int = 0, config: DecodeConfig = DecodeConfig(),
           out: str | os.PathLike | None = None, progress: bool = True, model: str = ""
           ) -> dict[int, LayerResult]:
    """Decode `layers` (default all conv layers) layer by layer.

    Layer l is seeded by layer l-1's result; a needed lower layer that is not requested is
    loaded from `out` if a previous run completed it there, else decoded (same neuron
    selection, clipped to the layer's width) and written to `out` too.
    `neurons` (default all) applies to every layer, clipped to each layer's width.
    """
    layers = requested_layers(net, layers)
    needs_seed = config.seed_from_previous
    if needs_seed:  # every layer below a requested one seeds it: load it or decode it
        start = layers[0]
        while start > 1 and (out is None or load_layer(out, start - 1) is None):
            start -= 1
        todo = list(range(max(1, start - 1) if start > 1 else 1, layers[-1] + 1))
    else:
        todo = layers
    selections = {l: clipped_neurons(net, l, neurons) for l in todo}  # bad input: nothing written
    if out is not None:
        check_same_run(Path(out), seed, config)
        update_run(Path(out), seed, config, model, None)

    def one(l: int, below: LayerResult | None) -> LayerResult:
        loaded = load_layer(out, l) if (out is not None and l not in layers) else None
        return loaded or decode_layer(net, l, selections[l], seed, config, out,
                                      below if needs_seed else None, progress, model)

    return {l: r for l, r in layer_by_layer(todo, one).items() if l in layers}


def layer_by_layer(layers: list[int], decode_one) -> dict:
    """{layer: decode_one(layer, below)} in order, `below` the previous layer's result; each
    layer's compiled programs are forgotten after it (no later layer reuses them, and a long
    run would keep them all)."""
    results, below = {}, None
    for layer in layers:
        results[layer] = below = decode_one(layer, below)
        programs.clear()
    return results
