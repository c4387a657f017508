"""Decode neurons into motifs, layer by layer (method-notes §1-4), with atomic, resumable output.

    decode_neuron(net, layer, neuron, key)   one neuron -> NeuronResult (in memory)
    decode_layer(net, layer, ...)            neurons of one layer -> LayerResult (+ files)
    decode(net, layers=..., out=...)         several layers, each seeded by the one below

Each neuron's PRNG key is fold_in(fold_in(key(seed), layer), neuron), and a neuron's samples do
not depend on which neurons share a call of the GA program (nmjax.slots), so a resumed run
gives the same output as an uninterrupted one. The batch is spread over the local devices and
fitted to a memory budget (nmjax.devices), and a layer can be split into shards run on several
machines, then merged (nmjax.distribute).

Output directory (per layer L):
    layer{L}/samples/neuron{N}.h5   sampled sequences (bases 0..3 = ACGT), f, generations
    layer{L}/parts/neuron{N}.r{R}.npz  decoupled subsets of one neuron after R rounds
    layer{L}/ppms.meme, motifs.meme, neurons.tsv   assembled once the layer is complete
    run.json                        parameters, seed, versions; per layer timings, the rounds
                                    chosen and the rounds rule's test of each round tried

ppms.meme holds every subset's PPM over the whole receptive field (Laplace-smoothed, M = 80;
nsites = n), named L{L}_N{neuron}_S{subset}; motifs.meme the IC segments of those smoothed
PPMs, named L{L}_N{neuron}_S{subset}_{start}-{end} with 0-based start and exclusive end (a
Python slice of the PPM). neurons.tsv has one row per subset; a dead neuron (no f > 0) is one
row `neuron 0 0 nan nan` with an empty consensus.
"""
from __future__ import annotations

import dataclasses
import json
import os
import platform
import time
from pathlib import Path

import jax
import numpy as np

from . import baselines, decoupling, devices, ga, motifs, programs, sampling
from .config import FREE_SETTINGS, VERSION, DecodeConfig
from .errors import NmjaxError
from .fileio import atomic_path, check_output_dir, write_text
from .meme import Motif, write_meme
from .results import LayerResult, NeuronResult
from .seeding import seeding_for
from .slots import SlotUsage, ga_stream


def neuron_key(seed: int, layer: int, neuron: int) -> jax.Array:
    return jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), layer), neuron)


# -- one neuron from its samples -------------------------------------------------------
def _conact(net, layer: int, neuron: int, consensus: np.ndarray) -> np.ndarray:
    size = max(8, 1 << (len(consensus) - 1).bit_length())
    x = np.zeros((size,) + consensus.shape[1:] + (4,), np.float32)
    x[:len(consensus)] = np.eye(4, dtype=np.float32)[consensus]
    return np.asarray(net.neuron_values(x, layer, neuron))[:len(consensus)]


def summarise(net, layer: int, neuron: int, bases: np.ndarray, f: np.ndarray,
              key: jax.Array, rounds: int, generations: int, config: DecodeConfig
              ) -> NeuronResult:
    """Decouple (or apply a baseline to) a neuron's samples and describe every subset."""
    n_len = net.receptive_field(layer)
    if len(f) == 0:
        return NeuronResult(np.zeros((0, n_len, 4)), np.zeros(0, np.int64), np.zeros(0),
                            np.zeros(0), np.zeros((0, n_len), np.uint8), layer, neuron,
                            generations, rounds)
    if config.method == "neuronmotif":
        subsets = decoupling.decouple(net, layer, bases, f, jax.random.fold_in(key, 1), rounds,
                                      config)
        ppms = np.stack([motifs.weighted_ppm(bases[s], f[s], config.ppm_bins, config.empty_bin)
                         for s in subsets])
        n = np.array([len(s) for s in subsets])
        act = np.array([f[s].max() for s in subsets], np.float64)
    else:
        ppms = baselines.baseline_ppm(config.method, net, layer, neuron, bases, f)[None]
        used = np.sum(f > f.max() / 2) if config.method == "kelley" else len(f)
        n, act = np.array([used]), np.array([f.max()], np.float64)
    cons = np.stack([motifs.consensus(p) for p in ppms])
    return NeuronResult(ppms, n, act, _conact(net, layer, neuron, cons).astype(np.float64),
                        cons, layer, neuron, generations, rounds)


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


def summarise_rounds(net, layer: int, samples: dict[int, tuple], keys: dict[int, jax.Array],
                     config: DecodeConfig, parts: Path | None = None, progress: bool = False
                     ) -> tuple[dict[int, NeuronResult], int, list[dict]]:
    """Decouple every neuron's samples (bases, f, generations) with 1, 2, ... rounds until the
    t-test rule holds (rounds='auto'), or with the fixed rounds; per-neuron results are read
    from / written to `parts` when given. Returns (results, rounds, the rule's test of each
    round tried: `decoupling.rounds_test` with its rounds; empty where the rule does not run)."""
    from tqdm import tqdm

    auto = config.rounds == "auto" and config.method == "neuronmotif"
    rounds = 1 if auto or config.method != "neuronmotif" else config.rounds
    tests: list[dict] = []
    while True:
        results = {}
        for n in tqdm(samples, desc=f"layer {layer} decoupling (rounds {rounds})",
                      unit="neuron", disable=not progress):
            part = parts / f"neuron{n}.r{rounds}.npz" if parts is not None else None
            if part is not None and part.exists():
                results[n] = _read_part(part)
                continue
            bases, f, generations = samples[n]
            results[n] = summarise(net, layer, n, bases, f, keys[n], rounds, generations, config)
            if part is not None:
                _write_part(part, results[n])
        if not auto or max(net.pools[:layer - 1], default=1) == 1:
            return results, rounds, tests
        ratios = neuron_ratios(list(results.values()), config.rounds_ratio)
        tests.append({"rounds": rounds, **decoupling.rounds_test(ratios, config)})
        if tests[-1]["passed"] or rounds >= config.max_rounds:
            return results, rounds, tests
        rounds += 1


def decode_neuron(net, layer: int, neuron: int, key: jax.Array | int = 0,
                  config: DecodeConfig = DecodeConfig(), below: LayerResult | None = None
                  ) -> NeuronResult:
    """Decode one neuron in memory. `key` is a seed int (the key `decode` would use for this
    neuron) or a JAX key; `below` (layer-1's result) seeds the GA.

    With rounds='auto' the t-test rule runs on this neuron alone (mean ratio > threshold).
    """
    if isinstance(key, int):
        key = neuron_key(key, layer, neuron)
    if not 0 <= neuron < net.channels(layer):
        raise NmjaxError(f"neuron {neuron} does not exist: layer {layer} has neurons "
                         f"0..{net.channels(layer) - 1}")
    [(_, (bases, f), generations)] = sample_stream(net, layer, [neuron], [key], config, below, 1)
    results, _, _ = summarise_rounds(net, layer, {neuron: (bases, f, generations)}, {neuron: key},
                                  config)
    return results[neuron]


def neuron_ratios(results: list[NeuronResult], rule: str = "pooled") -> np.ndarray:
    """What the rounds rule tests, per live neuron: max conact / max act over its subsets
    ('pooled') or the max over its subsets of conact / act ('per-subset', the authors')."""
    if rule == "pooled":
        return np.array([r.conact.max() / r.act.max() for r in results if not r.dead])
    return np.array([np.max(r.conact / r.act) for r in results if not r.dead])


# -- files ------------------------------------------------------------------------------
def _write_samples(path: Path, layer: int, neuron: int, bases, f, generations: int,
                   config: DecodeConfig) -> None:
    import h5py

    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as h5:
            h5.create_dataset("sequences", data=bases, compression="gzip")
            h5.create_dataset("f", data=f)
            h5.attrs.update({"layer": layer, "neuron": neuron, "generations": generations,
                             "alphabet": "ACGT", "method": config.method})


def read_samples(path: Path):
    import h5py

    with h5py.File(path, "r") as h5:
        return h5["sequences"][()], h5["f"][()], int(h5.attrs["generations"])


def _write_part(path: Path, r: NeuronResult) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, ppms=r.ppms, n=r.n, act=r.act, conact=r.conact, consensus=r.consensus,
                     meta=np.array([r.layer, r.neuron, r.generations, r.rounds]))


def _read_part(path: Path) -> NeuronResult:
    with np.load(path) as d:
        layer, neuron, generations, rounds = d["meta"].tolist()
        return NeuronResult(d["ppms"], d["n"], d["act"], d["conact"], d["consensus"],
                            layer, neuron, generations, rounds)


def layer_files(result: LayerResult, config: DecodeConfig) -> dict[str, object]:
    """The assembled layer outputs: ppms.meme and motifs.meme motif lists, neurons.tsv text."""
    ppms, segs = [], []
    rule = motifs.segment_rule(config.segment_rule)
    rows = ["neuron\tsubset\tn\tact\tconact\tconsensus"]
    for neuron in sorted(result.neurons):
        r = result.neurons[neuron]
        if r.dead:
            rows.append(f"{neuron}\t0\t0\tnan\tnan\t")
            continue
        for s, smooth in enumerate(r.smoothed(config.laplace_pseudocount)):
            name = f"L{result.layer}_N{neuron}_S{s}"
            ppms.append(Motif(name, smooth, int(r.n[s])))
            for start, end in motifs.segment_ppm(r.ppms[s], int(r.n[s]), rule):
                segs.append(Motif(f"{name}_{start}-{end}", smooth[start:end], int(r.n[s])))
            rows.append(f"{neuron}\t{s}\t{r.n[s]}\t{r.act[s]:.6g}\t{r.conact[s]:.6g}\t"
                        f"{motifs.consensus_string(r.consensus[s])}")
    return {"ppms.meme": ppms, "motifs.meme": segs, "neurons.tsv": "\n".join(rows) + "\n"}


def write_layer(out: Path, result: LayerResult, config: DecodeConfig) -> None:
    files = layer_files(result, config)
    d = out / f"layer{result.layer}"
    write_meme(d / "ppms.meme", files["ppms.meme"])
    write_meme(d / "motifs.meme", files["motifs.meme"])
    write_text(d / "neurons.tsv", files["neurons.tsv"])


def _versions() -> dict:
    return {"nmjax": VERSION, "jax": jax.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "backend": jax.default_backend()}


def _update_run_json(out: Path, seed: int, config: DecodeConfig, model: str,
                     result: LayerResult | None) -> None:
    path = out / "run.json"
    run = json.loads(path.read_text()) if path.exists() else {}
    run.update({"model": model, "seed": seed, "parameters": dataclasses.asdict(config),
                "versions": _versions()})
    run.setdefault("layers", {})
    if result is not None:
        run["layers"][str(result.layer)] = {**result.timings, "rounds": result.rounds}
    write_text(path, json.dumps(run, indent=2, sort_keys=True) + "\n")


def settings_diff(old_parameters: dict, old_seed: int, config: DecodeConfig, seed: int) -> dict:
    """{setting: (old, now)} for every setting and the seed that differ, free ones excepted.
    A setting the old run did not record (it predates it) had its default value."""
    old = {**dataclasses.asdict(DecodeConfig()), **old_parameters}
    now = {k: v for k, v in dataclasses.asdict(config).items() if k not in FREE_SETTINGS}
    diff = {k: (old[k], v) for k, v in now.items() if old[k] != v}
    if old_seed != seed:
        diff["seed"] = (old_seed, seed)
    return diff


def check_same_run(out: Path, seed: int, config: DecodeConfig) -> None:
    """Refuse an output folder that is a file, or one decoded with another seed or other
    parameters (resuming there would mix two runs)."""
    check_output_dir(out)
    path = out / "run.json"
    if not path.exists():
        return
    run = json.loads(path.read_text())
    diff = settings_diff(run.get("parameters", dataclasses.asdict(config)), run.get("seed", seed),
                         config, seed)
    if diff:
        raise NmjaxError(f"{out} holds a decode with other settings (previous, now: {diff}); "
                         "use another --out folder or the same settings to resume")


def first_round_config(config: DecodeConfig) -> DecodeConfig:
    """The config that decouples with the first rounds a layer tries (1 under the t-test rule):
    what a shard computes before the layer-level rule can be applied at merge."""
    return dataclasses.replace(config, rounds=1) if config.rounds == "auto" else config


# -- a layer ----------------------------------------------------------------------------
def requested_layers(net, layers: list[int] | None) -> list[int]:
    """The sorted conv layers to decode (None = all); a clear error for a missing one."""
    layers = sorted(set(layers or range(1, net.num_conv_layers + 1)))
    for l in layers:
        net.channels(l)  # raises a clear error for a missing layer
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


def layer_neurons(net, layer: int, neurons: list[int] | None) -> list[int]:
    """The sorted neurons to decode in `layer` (None = all); a clear error for bad ones."""
    channels = net.channels(layer)
    if neurons is None:
        return list(range(channels))
    neurons = sorted(set(neurons))
    bad = [n for n in neurons if not 0 <= n < channels]
    if bad or not neurons:
        raise NmjaxError(f"neuron(s) {bad or 'none'} do not exist: layer {layer} has neurons "
                         f"0..{channels - 1}")
    return neurons


def sample_layer(net, layer: int, neurons: list[int], seed: int, config: DecodeConfig,
                 d: Path | None, below: LayerResult | None, progress: bool
                 ) -> tuple[dict[int, tuple], dict]:
    """Samples (bases, f, generations) of `neurons`, read from / written to `d`/samples when
    given (each neuron's file as soon as it is done); and the sampling timings."""
    from tqdm import tqdm

    sample_path = (lambda n: d / "samples" / f"neuron{n}.h5") if d else None
    todo = [n for n in neurons if d is None or not sample_path(n).exists()]
    timings = _sampling_settings(net, layer, config, neurons)
    samples = {n: read_samples(sample_path(n)) for n in neurons if n not in todo}
    usage = SlotUsage()
    t0 = time.perf_counter()
    with tqdm(total=len(neurons), initial=len(samples), desc=f"layer {layer} sampling",
              unit="neuron", disable=not progress) as bar:
        if todo:
            slots = devices.neuron_batch(net, layer, config, len(todo))
            for i, (bases, f), g in sample_stream(net, layer, todo,
                                                  [neuron_key(seed, layer, n) for n in todo],
                                                  config, below, slots, usage):
                samples[todo[i]] = (bases, f, g)
                if d is not None:
                    _write_samples(sample_path(todo[i]), layer, todo[i], bases, f, g, config)
                bar.update(1)
    timings.update({"neurons_sampled_this_run": len(todo),
                    "sampling_seconds": time.perf_counter() - t0,
                    "slot_generations": usage.slot_generations,
                    "idle_slot_generations": usage.idle_generations})
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


def finish_layer(net, layer: int, samples: dict[int, tuple], seed: int, config: DecodeConfig,
                 out: Path | None, progress: bool, model: str, timings: dict) -> LayerResult:
    """Decouple every neuron's samples with the layer's rounds rule (reusing parts/ in `out`),
    and write the layer files and run.json when `out` is given."""
    neurons = sorted(samples)
    d = out / f"layer{layer}" if out is not None else None
    t0 = time.perf_counter()
    results, rounds, tests = summarise_rounds(net, layer, samples,
                                              {n: neuron_key(seed, layer, n) for n in neurons},
                                              config, d / "parts" if d is not None else None,
                                              progress)
    t_decouple = time.perf_counter() - t0
    gens = [samples[n][2] for n in neurons]
    kept = [len(samples[n][1]) for n in neurons]
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
        _update_run_json(out, seed, config, model, result)
    return result


def decode_layer(net, layer: int, neurons: list[int] | None = None, seed: int = 0,
                 config: DecodeConfig = DecodeConfig(), out: str | os.PathLike | None = None,
                 below: LayerResult | None = None, progress: bool = True,
                 model: str = "") -> LayerResult:
    """Decode `neurons` (default all) of `layer`, seeded by `below` (layer-1's result).

    With `out`, every neuron's samples and decoupled subsets are written atomically as they
    finish and reused by a rerun; the layer files are assembled at the end.
    """
    neurons = layer_neurons(net, layer, neurons)
    out = Path(out) if out is not None else None
    d = out / f"layer{layer}" if out is not None else None
    samples, timings = sample_layer(net, layer, neurons, seed, config, d, below, progress)
    return finish_layer(net, layer, samples, seed, config, out, progress, model, timings)


def load_layer(out: str | os.PathLike, layer: int) -> LayerResult | None:
    """A completed layer of a previous run's output directory (None if not complete there)."""
    out = Path(out)
    run = out / "run.json"
    if not run.exists() or not (out / f"layer{layer}" / "neurons.tsv").exists():
        return None
    info = json.loads(run.read_text()).get("layers", {}).get(str(layer))
    if info is None:
        return None
    rounds = info["rounds"]
    parts = sorted((out / f"layer{layer}" / "parts").glob(f"neuron*.r{rounds}.npz"))
    results = {r.neuron: r for r in map(_read_part, parts)}
    return LayerResult(layer, results, rounds, info)


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
        _update_run_json(Path(out), seed, config, model, None)
    results: dict[int, LayerResult] = {}
    below = None
    for l in todo:
        loaded = load_layer(out, l) if (out is not None and l not in layers) else None
        layer_result = loaded or decode_layer(net, l, selections[l], seed, config, out,
                                              below if needs_seed else None, progress, model)
        if l in layers:
            results[l] = layer_result
        below = layer_result
        programs.clear()  # no later layer reuses this one's programs; a long run kept them all
    return results
