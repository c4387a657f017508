"""Throughput of the decoder's hot loop on the paper's architectures: `python -m nmjax.bench`.

Per (model, layer), each case in a fresh subprocess (so its peak memory is its own):
- the scoring program (forward + input gradient of a population, `nmjax.scoring`), vmapped over
  a batch of neurons: compile seconds, run seconds, sequences/s, model FLOP/s against the
  machine's measured fp32 matmul peak;
- one GA generation (`nmjax.ga.step`, the decoder's step) for the same batch:
  generations/s, seconds per generation per neuron;
- peak resident memory (ru_maxrss) and the compiled programs' temporary buffers.
Optionally (`--decode`) whole decoded neurons of the full-size Basset (sampling + decoupling,
K-means seconds), compared with the authors' figures on this machine kind, and a projection of
the time to decode every neuron of Basset, BD-10 and DD-10 from the measured throughput.

Model FLOPs per scored sequence = 3 x forward FLOPs (forward 2 x MACs of conv blocks
1..l-1 plus the neuron's dot; the training convention counts the backward pass as 2 x forward);
the input gradient alone needs ~1 x forward, so the FLOPs actually executed are ~2/3 of that
figure ("executed" columns).

Architectures get random weights with BatchNorm statistics folded in (`nmjax.benchkit`).
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .benchkit import (compile_clock, compiled_program, forward_flops, load_average,
                       machine_name, matmul_peak, model, peak_rss_mb, run_seconds)
from .benchreport import markdown, projection
from .config import PRECISION_CHOICES
from .fileio import write_text

# The authors' implementation on this machine kind, full-size Basset (../shared/anchors.md):
# seconds per neuron, sampling + K-means, (low, high).
AUTHORS_SECONDS_PER_NEURON = {1: (28 + 5, 38 + 5), 2: (205 + 11, 211 + 43), 3: (720, None)}
# ... and seconds per GA generation (layer 3 never finished its GA within the 12-min cap).
AUTHORS_SECONDS_PER_GENERATION = {1: 0.42, 2: 2.0, 3: 15.0}
TARGET_SPEEDUP = {1: 100, 2: 100, 3: 10}


# -- one case ----------------------------------------------------------------------------
def bench_layer(name: str, width: float, layer: int, population: int | None, neuron_batch: int,
                precision: str, population_chunk: int | str | None, repeats: int) -> dict:
    """Scoring and GA-generation throughput of one layer (see the module docstring).

    The fp32 matmul peak is measured again inside the case, so the fraction of peak compares
    two figures taken under the same load of a shared machine.
    """
    from . import ga
    from .config import DecodeConfig
    from .scoring import make_score_fn, make_value_fn

    load_before = load_average()
    peak = matmul_peak(repeats=3)["fp32_peak"]
    net = model(name, width)
    cfg = ga.ga_config(net, layer, DecodeConfig(population=population, precision=precision))
    precision, n_len, pop = cfg.precision, cfg.length, cfg.population
    batch = min(neuron_batch, net.channels(layer))
    neurons = jnp.arange(batch, dtype=jnp.int32)
    key = jax.random.key(0)
    bases = jax.random.randint(key, (batch, pop, n_len), 0, 4).astype(jnp.int8)
    x = jax.nn.one_hot(bases, 4, dtype=jnp.float32)

    score_fn = make_score_fn(net, layer, precision=precision, population_chunk=population_chunk)
    value_fn = make_value_fn(net, layer, precision=precision,
                             population_chunk=population_chunk)
    score = jax.vmap(score_fn, in_axes=(None, 0, 0))
    score_prog, score_compile, score_temp = compiled_program(score, net.params, x, neurons)
    score_s = run_seconds(score_prog, (net.params, x, neurons), repeats)

    step = jax.vmap(functools.partial(ga.step, score_fn, value_fn, cfg), in_axes=(None, 0, 0))
    state, _ = ga.first_states(cfg, list(jax.random.split(key, batch)))
    step_prog, step_compile, step_temp = compiled_program(step, net.params, state, neurons)
    step_s = run_seconds(step_prog, (net.params, state, neurons), repeats)

    fwd = forward_flops(net, layer)
    model_flops = 3 * fwd
    return {
        "model": name, "width": width, "layer": layer, "receptive_field": n_len,
        "channels": net.channels(layer), "population": pop, "neuron_batch": batch,
        "precision": precision, "population_chunk": population_chunk,
        "forward_mflop_per_seq": round(fwd / 1e6, 4),
        "model_mflop_per_seq": round(model_flops / 1e6, 4),
        "score_compile_s": round(score_compile, 2), "score_run_s": round(score_s, 4),
        "score_seq_per_s": round(batch * pop / score_s, 1),
        "score_model_gflops": round(batch * pop * model_flops / score_s / 1e9, 1),
        "score_executed_gflops": round(batch * pop * 2 * fwd / score_s / 1e9, 1),
        "case_fp32_peak_gflops": peak,
        "score_fraction_of_peak": round(batch * pop * model_flops / score_s / 1e9 / peak, 3),
        "ga_compile_s": round(step_compile, 2), "ga_generation_s": round(step_s, 4),
        "ga_generations_per_s": round(1 / step_s, 3),
        "ga_s_per_generation_per_neuron": round(step_s / batch, 5),
        "score_temp_mb": score_temp, "ga_temp_mb": step_temp, "peak_rss_mb": peak_rss_mb(),
        "load_before": load_before, "load_after": load_average(),
    }


def decode_neurons(layer: int, batches: list[list[int]], max_samples: int | None,
                   precision: str) -> dict:
    """Decode batches of neurons of the full-size Basset as the decoder does (one GA program
    call per generation for a batch), timing sampling and decoupling apart.

    The first batch also pays compilation; steady per-neuron figures use the later batches when
    there are several, less the seconds JAX spent compiling in them (a later neuron whose sample
    set falls in a new K-means row bucket compiles that program once per layer; a whole-layer run
    spreads it over hundreds of neurons). Both figures are recorded. `max_samples` (default: the
    decoder's cap, the paper's 100,000) changes the sample-set cap; the per-bin cap scales with it.
    """
    from .config import DecodeConfig
    from .decoder import neuron_key
    from .slots import run_ga
    from .summarise import summarise

    load_before = load_average()
    net = model("basset", 1.0)
    config = DecodeConfig(precision=precision)
    if max_samples is not None:
        config = dataclasses.replace(config, max_samples=max_samples,
                                     per_bin=max(1, max_samples // config.sample_bins))
    compiling = compile_clock()
    rows = []
    for neurons in batches:
        keys = [neuron_key(0, layer, n) for n in neurons]
        c0, t0 = compiling(), time.perf_counter()
        sets, generations = run_ga(net, layer, neurons, keys, config)
        t1 = time.perf_counter()
        results = [summarise(net, layer, n, bases, f, k, 1, g, config)
                   for n, (bases, f), k, g in zip(neurons, sets, keys, generations)]
        t2 = time.perf_counter()
        rows.append({"neurons": neurons, "generations": generations,
                     "samples": [int(len(f)) for _, f in sets],
                     "subsets": [int(len(r.n)) for r in results],
                     "sampling_s": round(t1 - t0, 2), "decoupling_s": round(t2 - t1, 2),
                     "compile_s": round(compiling() - c0, 2),
                     "s_per_neuron": round((t2 - t0) / len(neurons), 2)})
    return {"layer": layer, "max_samples": config.max_samples, "precision": precision,
            "batches": rows, **_decode_summary(layer, rows),
            "peak_rss_mb": peak_rss_mb(),
            "load_before": load_before, "load_after": load_average()}


def _decode_summary(layer: int, rows: list[dict]) -> dict:
    """Per-neuron and per-generation seconds of decoded batches (after the first, which
    compiles, where there are several) against the authors' figures."""
    steady = rows[1:] or rows
    count = sum(len(r["neurons"]) for r in steady)
    with_compile = sum(r["sampling_s"] + r["decoupling_s"] for r in steady) / count
    per_neuron = with_compile - sum(r["compile_s"] for r in steady) / count
    per_generation = (sum(r["sampling_s"] for r in steady)
                      / sum(len(r["neurons"]) * max(r["generations"]) for r in steady))
    authors = AUTHORS_SECONDS_PER_NEURON[layer][0]
    return {"includes_compile": len(rows) == 1,
            "seconds_per_neuron": round(per_neuron, 2),
            "seconds_per_neuron_with_compile": round(with_compile, 2),
            "kmeans_s_per_neuron": round(sum(r["decoupling_s"] for r in steady) / count, 2),
            "generations_mean": round(float(np.mean([g for r in rows for g in r["generations"]])),
                                      1),
            "authors_s_per_neuron_at_least": authors,
            "speedup_vs_authors_at_least": round(authors / per_neuron, 1),
            "target_speedup": TARGET_SPEEDUP[layer],
            "sampling_s_per_generation": round(per_generation, 3),
            "authors_s_per_generation_at_least": AUTHORS_SECONDS_PER_GENERATION[layer],
            "generation_speedup_vs_authors_at_least":
                round(AUTHORS_SECONDS_PER_GENERATION[layer] / per_generation, 1)}


# -- orchestration -----------------------------------------------------------------------
def _in_subprocess(case: dict, timeout: float) -> dict:
    """Run one case in a fresh interpreter (own memory peak, own compile cache)."""
    cmd = [sys.executable, "-m", "nmjax.bench", "--case", json.dumps(case)]
    root = Path(__file__).resolve().parent.parent
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=root)
    except subprocess.TimeoutExpired:
        return {**case, "error": f"timed out after {timeout:.0f} s"}
    if done.returncode != 0:
        return {**case, "error": done.stderr.strip().splitlines()[-1] if done.stderr else
                f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _run_case(case: dict) -> dict:
    kind = case.pop("kind")
    if kind == "layer":
        return bench_layer(**case)
    if kind == "scan":
        from .scanbench import bench_scan
        return bench_scan(**case)
    return decode_neurons(**case)


def plan(args) -> tuple[list[dict], list[dict]]:
    """The layer cases and decode cases a run will execute."""
    from .architectures import ARCHITECTURES

    layer_cases = []
    for name in args.models:
        n_layers = 5 if name == "example" else len(ARCHITECTURES[name].channels)
        layers = [l for l in (args.layers or range(1, n_layers + 1)) if l <= n_layers]
        for width in ([1.0] if name == "example" else args.widths):
            for layer in layers:
                layer_cases.append({"kind": "layer", "name": name, "width": width,
                                    "layer": layer, "population": args.population,
                                    "neuron_batch": args.neuron_batch,
                                    "precision": args.precision,
                                    "population_chunk": args.population_chunk,
                                    "repeats": args.repeats})
    decode_cases = [{"kind": "decode", "layer": layer, "batches": batches,
                     "max_samples": args.decode_max_samples, "precision": args.precision}
                    for layer, batches in args.decode.items()]
    return layer_cases, decode_cases


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m nmjax.bench", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="smoke run for CI (< 1 min): example + Basset at width 0.125, small "
                        "population, no decoding")
    p.add_argument("--models", default="basset,deepsea,bd10,dd10,example",
                   help="comma-separated: basset, deepsea, bd10, dd10, example")
    p.add_argument("--widths", default="1.0", help="comma-separated width multipliers")
    p.add_argument("--layers", default=None, help="comma-separated layers (default: all)")
    p.add_argument("--population", type=int, default=None,
                   help="GA population (default: the paper's, from the receptive field)")
    p.add_argument("--neuron-batch", type=int, default=1, help="neurons per compiled call")
    p.add_argument("--precision", default="auto", choices=PRECISION_CHOICES,
                   help="GA passes: auto (as the decoder: bf16 below convs of >= 128 channels), "
                        "fp32 or bf16")
    p.add_argument("--population-chunk", default="auto",
                   help="windows per scoring chunk, 'auto' or 'none' (nmjax.scoring)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per program (best kept)")
    p.add_argument("--decode", nargs="?", const="1=0/1/2/3;2=0/1/2/3/4/5/6/7;3=0/1/2/3",
                   default=None,
                   help="also decode full-size Basset neurons and project whole-model times: "
                        "'layer=batch/batch;...', a batch is comma-separated neurons run "
                        "together (default %(const)s: one neuron per call, as the decoder); "
                        "the first batch pays compilation")
    p.add_argument("--decode-max-samples", type=int, default=None,
                   help="sample-set cap while decoding (default: the decoder's, the paper's "
                        "100,000; lower it only to compare with older runs)")
    p.add_argument("--generations", type=int, default=100,
                   help="generations per neuron assumed by the projection where no decoded "
                        "neuron measured them")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per case")
    p.add_argument("--out", default="bench/results", help="output directory")
    p.add_argument("--from-json", default=None,
                   help="no measuring: recompute the projection and markdown of an earlier "
                        "run's JSON (written next to it)")
    p.add_argument("--scan", action="store_true",
                   help="only the scanning row (nmjax scan): full-size Basset, all layer-3 "
                        "neurons, bases/s and %% of fp32 peak; writes scan.json/.md")
    p.add_argument("--scan-chunk", type=int, default=4096, help="bases per scanned chunk")
    p.add_argument("--scan-batch", type=int, default=4, help="chunks per scanning call")
    p.add_argument("--scan-bases", type=int, default=200_000, help="bases scanned")
    p.add_argument("--case", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.models, args.widths, args.population, args.repeats = "example,basset", "0.125", 200, 1
        args.layers, args.decode = "3,5", None
    if args.population_chunk not in ("auto", "none"):
        args.population_chunk = int(args.population_chunk)
    elif args.population_chunk == "none":
        args.population_chunk = None
    args.models = args.models.split(",")
    args.widths = [float(w) for w in args.widths.split(",")]
    args.layers = [int(l) for l in args.layers.split(",")] if args.layers else None
    args.decode = {int(layer): [[int(n) for n in batch.split(",")] for batch in spec.split("/")]
                   for layer, spec in (part.split("=") for part in args.decode.split(";"))
                   } if args.decode else {}
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.case:
        print(json.dumps(_run_case(json.loads(args.case))))
        return 0
    if args.from_json:
        result = json.loads(Path(args.from_json).read_text())
        if result["decoded"] or args.decode:
            result["projection"] = projection(result["layers"], result["decoded"],
                                              args.generations)
        write_text(args.from_json, json.dumps(result, indent=1) + "\n")
        write_text(Path(args.from_json).with_suffix(".md"), markdown(result))
        print(markdown(result))
        return 0
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    if args.scan:
        return _scan_only(args, started)
    load_start = load_average()
    peak = matmul_peak()
    print(f"matmul peak GFLOP/s: {peak}  (load {load_start})", flush=True)
    layer_cases, decode_cases = plan(args)
    result = {"mode": "quick" if args.quick else "full", "started": started,
              "machine": machine_name(),
              "jax": jax.__version__, "load_start": load_start, "peak": peak,
              "layers": [], "decoded": [], "projection": []}
    stem = Path(args.out) / ("quick" if args.quick else "bench")
    # The files are rewritten after every case, so an interrupted run keeps what it measured.
    for case in layer_cases + decode_cases:
        r = _in_subprocess(case, args.timeout)
        result["layers" if case["kind"] == "layer" else "decoded"].append(r)
        print(json.dumps(r), flush=True)
        result["load_end"] = load_average()
        if args.decode:
            result["projection"] = projection(result["layers"], result["decoded"],
                                              args.generations)
        write_text(f"{stem}.json", json.dumps(result, indent=1) + "\n")
        write_text(f"{stem}.md", markdown(result))
    print(f"wrote {stem}.json and {stem}.md")
    return 0


def _scan_only(args, started: str) -> int:
    from .scanbench import scan_markdown

    case = {"kind": "scan", "chunk": args.scan_chunk, "batch": args.scan_batch,
            "bases": args.scan_bases, "repeats": args.repeats}
    result = {"started": started, "jax": jax.__version__,
              "machine": machine_name(),
              "scan": _in_subprocess(case, args.timeout)}
    stem = Path(args.out) / "scan"
    write_text(f"{stem}.json", json.dumps(result, indent=1) + "\n")
    write_text(f"{stem}.md", scan_markdown(result))
    print(scan_markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
