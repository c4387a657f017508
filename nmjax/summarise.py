"""A neuron's decoded subsets from its samples (method-notes §2-3): decoupling (or a baseline),
each subset's PPM, act, consensus and conact, and the layer's rounds rule."""
from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from . import baselines, decoupling, motifs
from .arrays import one_hot, power_of_two
from .config import DecodeConfig
from .results import NeuronResult, pooled_ratio
from .runfolder import part_path, read_part, write_part


def _conact(net, layer: int, neuron: int, consensus: np.ndarray) -> np.ndarray:
    x = np.zeros((power_of_two(len(consensus), 8),) + consensus.shape[1:] + (4,), np.float32)
    x[:len(consensus)] = one_hot(consensus)
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


def neuron_ratios(results: list[NeuronResult], rule: str = "pooled") -> np.ndarray:
    """What the rounds rule tests, per live neuron: max conact / max act over its subsets
    ('pooled') or the max over its subsets of conact / act ('per-subset', the authors')."""
    if rule == "pooled":
        return np.array([pooled_ratio(r.act, r.conact) for r in results if not r.dead])
    return np.array([np.max(r.conact / r.act) for r in results if not r.dead])


def summarise_rounds(net, layer: int, samples: dict[int, tuple], keys: dict[int, jax.Array],
                     config: DecodeConfig, layer_path: Path | None = None, progress: bool = False
                     ) -> tuple[dict[int, NeuronResult], int, list[dict]]:
    """Decouple every neuron's samples (bases, f, generations) with 1, 2, ... rounds until the
    t-test rule holds (rounds='auto'), or with the fixed rounds; per-neuron results are read
    from / written to the layer folder `layer_path` (parts/) when given. Returns (results,
    rounds, the rule's test of each round tried: `decoupling.rounds_test` with its rounds;
    empty where the rule does not run)."""
    from tqdm import tqdm

    auto = config.rounds == "auto" and config.method == "neuronmotif"
    rounds = 1 if auto or config.method != "neuronmotif" else config.rounds
    tests: list[dict] = []
    while True:
        results = {}
        for n in tqdm(samples, desc=f"layer {layer} decoupling (rounds {rounds})",
                      unit="neuron", disable=not progress):
            part = part_path(layer_path, n, rounds) if layer_path is not None else None
            if part is not None and part.exists():
                results[n] = read_part(part)
                continue
            bases, f, generations = samples[n]
            results[n] = summarise(net, layer, n, bases, f, keys[n], rounds, generations, config)
            if part is not None:
                write_part(part, results[n])
        if not auto or max(net.pools[:layer - 1], default=1) == 1:
            return results, rounds, tests
        ratios = neuron_ratios(list(results.values()), config.rounds_ratio)
        tests.append({"rounds": rounds, **decoupling.rounds_test(ratios, config)})
        if tests[-1]["passed"] or rounds >= config.max_rounds:
            return results, rounds, tests
        rounds += 1
