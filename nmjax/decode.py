"""Decode neurons into motifs, layer by layer (method-notes §1-4), with atomic, resumable output.

    decode_neuron(net, layer, neuron, key)   one neuron -> NeuronResult (in memory)
    decode_layer(net, layer, ...)            neurons of one layer -> LayerResult (+ files)
    decode(net, layers=..., out=...)         several layers, each seeded by the one below

Each neuron's PRNG key is fold_in(fold_in(key(seed), layer), neuron), and a neuron's samples do
not depend on which neurons share a call of the GA program (nmjax.slots), so a resumed run
gives the same output as an uninterrupted one. The batch is spread over the local devices and
fitted to a memory budget,
and a layer can be split into shards run on several machines, then merged: nmjax.distribute.

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
import functools
import json
import os
import platform
import time
from pathlib import Path

import jax
import numpy as np

from . import baselines, decoupling, distribute, motifs, sampling
from .errors import NmjaxError
from .fileio import atomic_path, check_output_dir, write_text
from .meme import Motif, write_meme
from .scoring import PRECISIONS
from .seeding import SEEDING_RULES, seeding_for
from .slots import SlotUsage, ga_stream

METHODS = ("neuronmotif", "kelley", "alipanahi", "saliency")
RATIO_RULES = ("pooled", "per-subset")


@dataclasses.dataclass(frozen=True)
class DecodeConfig:
    """Every size, rate and rule of the decoder; defaults are the paper's values.

    population: GA population (None = the paper's clip(floor(N/20)*1000, 2000, 5000)).
    rounds: decoupling rounds, an int or 'auto' (the t-test rule, up to max_rounds).
    neuron_batch: neurons per call of the layer's compiled GA program (rounded up to a
        multiple of the device count; see nmjax.distribute); a slot whose neuron stops takes
        the layer's next neuron (nmjax.slots). 1 by default: on a 2-core CPU a batch of 4 cost
        1.7x per neuron (Basset layers 2-3) and 1.8x (example layer 3), measured before slots
        were refilled, as the cores are already busy with one neuron; raise it on a GPU.
    memory_budget: bytes of temporary GA memory per device (None = no limit); lowers the
        neuron batch of a layer whose estimated memory exceeds it (at least 1 neuron).
    precision: the GA's forward and gradient passes in 'fp32', 'bf16' or 'auto' (bf16 where a
        conv below the layer is wide: `nmjax.scoring.layer_precision`); the f of every kept
        sample is re-scored in float32 (`sampling.rescore`), so outputs carry float32 values.
    segment_rule: how motifs.meme cuts the PPMs into segments and the grammar's dictionary
        reads them (`nmjax.motifs.SEGMENT_RULES`: 'reference', the authors' code, or 'paper').

    Where the authors' code reads the method differently, the option below holds both readings
    (`AUTHORS_READING` sets all of theirs; bench/fidelity.py measures each):
    seeding: 'window' (a lower-layer motif is written only where its whole window is free, so
        kernel-3 pool-2 nets get one per sequence) or 'authors' (only the IC > 1 core of a
        placed motif is protected, every subset of the drawn neuron is written, c is flattened
        into 20 equal-mass bins): `nmjax.seeding`.
    keep_initial_population: the (seeded) initial population joins the sample set (authors).
    cap_enumerated: cap enumerated samples (receptive field < enumerate_below) at max_samples
        like GA ones; False keeps every window with f > 0 (authors).
    patience: the GA stops after this many generations without a better mean f; the paper says
        10 (default), the authors' code stops after 11.
    rounds_ratio: the ratio the rounds rule tests per neuron: 'pooled' max conact / max act
        over its subsets, or 'per-subset' the max over subsets of conact / act (authors;
        never lower, so it never asks for more rounds). run.json records each round's test.
    ratio_tie_margin: a rounds decision that would change if every ratio moved by up to this
        much is a tie, decided as passing (the fewer rounds), so float rounding of ratios near
        the threshold cannot flip it (`nmjax.decoupling.rounds_test`). 1e-5 is 100 times the
        float32 rounding of a ratio and moves t by under 0.01 for 30 neurons of sd 0.05.
    empty_bin: an empty PPM value bin reuses the 'nearest' non-empty bin (the lower on a tie)
        or the one 'above' it (authors): `nmjax.motifs.weighted_ppm`.
    """

    method: str = "neuronmotif"
    mutation: str = "reference"
    precision: str = "auto"
    population: int | None = None
    elite_fraction: float = 0.1
    max_generations: int = 200
    patience: int = 10
    max_samples: int = 100_000
    sample_bins: int = 20
    per_bin: int = 5_000
    cap_every: int = 5
    enumerate_below: int = 11
    seed_from_previous: bool = True
    neuron_batch: int = 1
    memory_budget: int | None = None
    rounds: int | str = "auto"
    max_rounds: int = 3
    ratio_threshold: float = 0.95
    ratio_p_value: float = 0.1
    rounds_ratio: str = "pooled"
    ratio_tie_margin: float = 1e-5
    seeding: str = "window"
    keep_initial_population: bool = False
    cap_enumerated: bool = True
    empty_bin: str = "nearest"
    min_split: int = 50
    kmeans_restarts: int = 4
    kmeans_tol: float = 1e-4
    kmeans_max_iter: int = 300
    ppm_bins: int = 20
    laplace_pseudocount: float = 80.0
    segment_rule: str = motifs.DEFAULT_SEGMENT_RULE

    def __post_init__(self):
        for name, choices in (("method", METHODS), ("mutation", sampling.MUTATION_RULES),
                              ("precision", ("auto",) + PRECISIONS), ("seeding", SEEDING_RULES),
                              ("rounds_ratio", RATIO_RULES),
                              ("empty_bin", motifs.EMPTY_BIN_RULES)):
            if getattr(self, name) not in choices:
                raise NmjaxError(f"unknown {name} {getattr(self, name)!r}; choose from "
                                 f"{', '.join(choices)}")
        if not (self.rounds == "auto" or (isinstance(self.rounds, int) and self.rounds >= 1)):
            raise NmjaxError(f"rounds must be 'auto' or a positive integer, not {self.rounds!r}")
        for name in ("neuron_batch", "patience", "max_rounds"):
            if getattr(self, name) < 1:
                raise NmjaxError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.memory_budget is not None and self.memory_budget < 1:
            raise NmjaxError(f"memory_budget must be a positive number of bytes, not "
                             f"{self.memory_budget}")
        motifs.segment_rule(self.segment_rule)   # a clear error for an unknown rule
        if self.population is not None and self.population < 10:
            raise NmjaxError(f"population {self.population} is too small (at least 10)")
        if not 0 <= self.ratio_tie_margin < 1:
            raise NmjaxError(f"ratio_tie_margin must be in [0, 1), not {self.ratio_tie_margin}")
        for name in ("keep_initial_population", "cap_enumerated", "seed_from_previous"):
            if not isinstance(getattr(self, name), bool):
                raise NmjaxError(f"{name} must be True or False, not {getattr(self, name)!r}")


# the authors' reading of every rule where it differs from the paper's (DecodeConfig docstring)
AUTHORS_READING = {"seeding": "authors", "keep_initial_population": True,
                   "cap_enumerated": False, "patience": 11, "rounds_ratio": "per-subset",
                   "empty_bin": "above"}


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
        return np.stack([motifs.laplace(p, n, pseudocount) for p, n in zip(self.ppms, self.n)]) \
            if len(self.n) else self.ppms


@dataclasses.dataclass(frozen=True)
class LayerResult:
    """Decoded neurons of one layer and how long they took."""

    layer: int
    neurons: dict[int, NeuronResult]
    rounds: int
    timings: dict


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


def _read_samples(path: Path):
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
    import nmjax

    return {"nmjax": nmjax.__version__, "jax": jax.__version__, "numpy": np.__version__,
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


# settings that may change between runs into one directory: the rounds choice (per-neuron
# results are stored per number of rounds) and the batching (results do not depend on it)
FREE_SETTINGS = frozenset({"rounds", "max_rounds", "ratio_threshold", "ratio_p_value",
                           "rounds_ratio", "ratio_tie_margin", "neuron_batch", "memory_budget"})


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
    samples = {n: _read_samples(sample_path(n)) for n in neurons if n not in todo}
    usage = SlotUsage()
    t0 = time.perf_counter()
    with tqdm(total=len(neurons), initial=len(samples), desc=f"layer {layer} sampling",
              unit="neuron", disable=not progress) as bar:
        if todo:
            slots = distribute.neuron_batch(net, layer, config, len(todo))
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
            else config.population or sampling.population_size(net.receptive_field(layer)),
            "neurons_per_call": distribute.neuron_batch(net, layer, config, len(neurons)),
            "neurons_per_compiled_program": len(neurons),
            "devices": distribute.device_count(), "memory_budget": config.memory_budget}


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
        jax.clear_caches()  # no later layer reuses this one's programs; a long run kept them all
    return results
