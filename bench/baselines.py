"""NeuronMotif against the max-activation baselines on the bundled example (paper Fig. 5c).

    python bench/baselines.py --out bench/results/ [--layers 2-4] [--population 2000]

Every method summarises the SAME samples: the example is decoded once with NeuronMotif
(layers 1..max, each seeded by the NeuronMotif result below it, as `nmjax decode` does), and
each baseline (Kelley: mean of samples with f > A/2; Alipanahi: mean of all samples, f > 0;
saliency: df/dx at the best sample) is applied to those per-neuron sample sets. Every
method's PPMs are Laplace-smoothed and IC-segmented by the decoder's own code
(`nmjax.runfolder.layer_files`), and the segments are matched against JASPAR CORE vertebrates with
`matching.match_layer` and the same `TomtomConfig` for every method.

Per layer and method it records: neurons whose best match (lowest q over all their segmented
motifs and all JASPAR matrices) is a planted matrix at q < 0.01 and q < 0.001; the planted
matrices discovered (best match of at least one neuron at q < 0.01); per planted matrix, the
median best q over the neurons whose best match it is; and, paired on the same neurons (those
whose NeuronMotif best match is planted matrix T at q < 0.01), the median q of each method's
best motif against T. Writes baselines.md and baselines.json to --out; the decode outputs go
to --work (resumable: a rerun reuses the samples and decoupled subsets found there).
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

import nmjax
from nmjax.commands import parse_range
from nmjax.config import METHODS, DecodeConfig
from nmjax.decoder import decode, neuron_key
from nmjax.example import example_motifs_path
from nmjax.fileio import write_text
from nmjax.matching import TomtomConfig, compare, describe, match_layer
from nmjax.meme import read_meme
from nmjax.motifdb import DEFAULT_RELEASE, jaspar_motifs
from nmjax.results import LayerResult
from nmjax.runfolder import parse_ppm_name, read_ppms, read_samples, read_segments, write_layer
from nmjax.summarise import summarise

NOT_REPORTED_Q = 1.0  # a pair above TomtomConfig.report_max_q (not in matches.tsv)


def baseline_layer(net, layer: int, work: Path, method: str, seed: int) -> LayerResult:
    """Apply a baseline to the NeuronMotif run's samples of every neuron of `layer`."""
    config = DecodeConfig(method=method)
    samples = work / "neuronmotif" / f"layer{layer}" / "samples"
    results = {}
    for n in range(net.channels(layer)):
        bases, f, generations = read_samples(samples / f"neuron{n}.h5")
        results[n] = summarise(net, layer, n, bases, f, neuron_key(seed, layer, n), 1,
                               generations, config)
    result = LayerResult(layer, results, 1, {})
    write_layer(work / method, result, config)
    return result


def neuron_scores(matches, planted: dict[str, str]) -> dict[int, dict]:
    """Per neuron: its best match overall and its best q against each planted matrix."""
    out: dict[int, dict] = {}
    for m in matches:
        _, neuron, _ = parse_ppm_name(m.query)
        s = out.setdefault(neuron, {"best": None, "planted_q": {}})
        if s["best"] is None or (m.q_value, m.p_value) < (s["best"].q_value, s["best"].p_value):
            s["best"] = m
        if m.target in planted:
            s["planted_q"][m.target] = min(m.q_value, s["planted_q"].get(m.target, 1.0))
    return out


def layer_summary(scores: dict[int, dict], planted: dict[str, str], n_neurons: int,
                  n_with_motif: int) -> dict:
    best = {n: s["best"] for n, s in scores.items()}
    on_planted = {n: b for n, b in best.items() if b.target in planted}
    per_tf = {}
    for target, name in planted.items():
        qs = sorted(b.q_value for b in on_planted.values() if b.target == target)
        per_tf[f"{target} {name}"] = {
            "neurons_best": len(qs), "neurons_best_q01": sum(q < 0.01 for q in qs),
            "median_best_q": float(np.median(qs)) if qs else None,
            "min_best_q": qs[0] if qs else None}
    return {
        "neurons": n_neurons, "neurons_with_motif": n_with_motif,
        "neurons_matched_q01": sum(b.q_value < 0.01 for b in best.values()),
        "best_planted_q01": sum(b.q_value < 0.01 for b in on_planted.values()),
        "best_planted_q001": sum(b.q_value < 0.001 for b in on_planted.values()),
        "planted_discovered_q01": sorted({f"{b.target} {planted[b.target]}"
                                          for b in on_planted.values() if b.q_value < 0.01}),
        "per_planted": per_tf,
        "best_match_per_neuron": {str(n): {"query": b.query, "target": b.target,
                                           "tf": b.target_name, "q": b.q_value}
                                  for n, b in sorted(best.items())}}


def paired(scores: dict[str, dict[int, dict]], planted: dict[str, str]) -> dict:
    """Same neurons, same samples: those whose NeuronMotif best match is planted T at q < 0.01;
    per method, the median q (and count < 0.01) of its best motif against T."""
    ref = {n: s["best"].target for n, s in scores["neuronmotif"].items()
           if s["best"].target in planted and s["best"].q_value < 0.01}
    out = {"neurons": len(ref)}
    for method, sc in scores.items():
        qs = [sc.get(n, {"planted_q": {}})["planted_q"].get(t, NOT_REPORTED_Q)
              for n, t in ref.items()]
        out[method] = {"median_q": float(np.median(qs)) if qs else None,
                       "q01": sum(q < 0.01 for q in qs)}
    return out


def _fmt_q(q) -> str:
    return "-" if q is None else f"{q:.1e}"


def _tables(result: dict, view) -> list[str]:
    """The three tables of one view: view(layer entry) -> (methods dict, paired dict)."""
    s = result["settings"]
    lines = ["| layer | RF | method | neurons w/ motif | best = planted, q<0.01 | q<0.001 | "
             "planted TFs discovered (q<0.01) |", "|---|---|---|---|---|---|---|"]
    for layer, per in result["layers"].items():
        for method, r in view(per)[0].items():
            lines.append(f"| {layer} | {per['receptive_field']} | {method} | "
                         f"{r['neurons_with_motif']}/{r['neurons']} | {r['best_planted_q01']} | "
                         f"{r['best_planted_q001']} | {len(r['planted_discovered_q01'])}: "
                         f"{', '.join(t.split(' ')[1] for t in r['planted_discovered_q01'])} |")
    lines += ["", "Median best q per planted matrix over the neurons whose best match it is "
              "(number of such neurons in brackets):",
              "", "| layer | method | " + " | ".join(s["planted"].values()) + " |",
              "|---|---|" + "---|" * len(s["planted"])]
    for layer, per in result["layers"].items():
        for method, r in view(per)[0].items():
            cells = [f"{_fmt_q(v['median_best_q'])} ({v['neurons_best']})"
                     for v in r["per_planted"].values()]
            lines.append(f"| {layer} | {method} | " + " | ".join(cells) + " |")
    lines += ["", "Paired on the same neurons and samples (those whose NeuronMotif best match is "
              "planted matrix T at q < 0.01): median q of each method's best motif against T "
              "(a pair not reported, q > 0.5, counts as q = 1), and in brackets how many < 0.01:",
              "", "| layer | neurons | " + " | ".join(METHODS) + " |",
              "|---|---|" + "---|" * len(METHODS)]
    for layer, per in result["layers"].items():
        p = view(per)[1]
        lines.append(f"| {layer} | {p['neurons']} | " + " | ".join(
            f"{_fmt_q(p[m]['median_q'])} ({p[m]['q01']})" for m in METHODS) + " |")
    return lines


def markdown(result: dict) -> str:
    s = result["settings"]
    pop = ("the paper's default clip(N/20*1000, 2000, 5000)" if s["population_is_default"]
           else f"{s['population']}, smaller than the paper's 2000-5000")
    m = s["matching"]
    lines = [
        "# NeuronMotif vs max-activation baselines on the bundled example (paper Fig. 5c)",
        "",
        f"Model: the bundled example (planted {', '.join(f'{k} {v}' for k, v in s['planted'].items())}). "
        f"GA population: {pop}; seed {s['seed']}; decoupling rounds auto. All methods summarise "
        "the same samples (the NeuronMotif run's, seeded layer by layer by NeuronMotif). "
        f"Matching, identical for every method: {m['method']}, {m['database']}, motif pseudocount "
        f"{m['motif_pseudocount']}, both strands, q = {m['q_value']}. A neuron's best match is "
        "its lowest-q pair over all its motifs and all JASPAR matrices; 'planted' means one of "
        "the planted JASPAR matrices exactly (a paralog such as CEBPA or MEF2A does not count).",
        f"Run time: {result['seconds']['total']:.0f} s on {s['machine']} "
        f"({', '.join(f'{k} {v:.0f} s' for k, v in result['seconds'].items() if k != 'total')})"
        + ("." if s["neurons_sampled_this_run"] else
           "; the NeuronMotif samples and subsets were reused from an earlier run in --work."),
        "Decoupling rounds per layer: "
        + ", ".join(f"L{l} {d['rounds']}" for l, d in s["decode"].items()) + ".",
        "", "## Segmented motifs (motifs.meme: Laplace M = 80, IC > 1 regions +-3 bp, > 8 bp)", ""]
    lines += _tables(result, lambda per: (per["methods"], per["paired"]))
    lines += ["", "## Whole receptive-field PPMs (ppms.meme, unsegmented)", "",
              "The same comparison on the smoothed PPMs before segmentation, so that a method "
              "is not judged only on whether its PPM passes the IC threshold.", ""]
    lines += _tables(result, lambda per: (per["unsegmented"]["methods"],
                                          per["unsegmented"]["paired"]))
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="folder for baselines.md and baselines.json")
    ap.add_argument("--work", default="/tmp/nmjax-baselines",
                    help="decode outputs, reused on a rerun (default: /tmp/nmjax-baselines)")
    ap.add_argument("--layers", default="2-4", help="layers to compare (default: 2-4)")
    ap.add_argument("--population", type=int, default=None,
                    help="GA population (default: the paper's clip(N/20*1000, 2000, 5000))")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--release", default=DEFAULT_RELEASE, help="JASPAR release")
    args = ap.parse_args(argv)
    layers = parse_range(args.layers, "layers")
    out, work = Path(args.out), Path(args.work)
    net = nmjax.load()
    planted = {m.name: m.alt_name for m in read_meme(example_motifs_path())}
    params = TomtomConfig()
    db = jaspar_motifs(args.release)
    seconds = {}

    t0 = time.perf_counter()
    decoded = decode(net, layers=list(range(1, max(layers) + 1)),
                     config=DecodeConfig(population=args.population), seed=args.seed,
                     out=work / "neuronmotif", model="example")
    seconds["neuronmotif_decode"] = time.perf_counter() - t0
    sampled = sum(r.timings["neurons_sampled_this_run"] for r in decoded.values())
    for method in METHODS[1:]:
        t = time.perf_counter()
        for layer in layers:
            baseline_layer(net, layer, work, method, args.seed)
        seconds[f"{method}_from_samples"] = time.perf_counter() - t

    t = time.perf_counter()
    result_layers = {}
    for layer in layers:
        scores, methods, whole, unsegmented = {}, {}, {}, {}
        for method in METHODS:
            d = work / method / f"layer{layer}"
            segments = read_segments(d)
            scores[method] = neuron_scores(match_layer(d, db, params), planted)
            methods[method] = layer_summary(scores[method], planted, net.channels(layer),
                                            len({parse_ppm_name(m.name)[1] for m in segments}))
            full = read_ppms(d)
            whole[method] = neuron_scores(compare(full, db, params), planted)
            unsegmented[method] = layer_summary(
                whole[method], planted, net.channels(layer),
                len({parse_ppm_name(m.name)[1] for m in full}))
        result_layers[str(layer)] = {"receptive_field": net.receptive_field(layer),
                                     "methods": methods, "paired": paired(scores, planted),
                                     "unsegmented": {"methods": unsegmented,
                                                     "paired": paired(whole, planted)}}
    seconds["matching"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t0
    result = {"settings": {"population": args.population or "default",
                           "population_is_default": args.population is None,
                           "seed": args.seed, "layers": layers, "planted": planted,
                           "matching": describe(params, None, args.release),
                           "machine": f"{os.cpu_count()} CPU cores (shared)",
                           "neurons_sampled_this_run": sampled,
                           "decode": {l: {k: r.timings[k] for k in
                                          ("receptive_field", "population", "generations",
                                           "samples_kept", "subsets")} | {"rounds": r.rounds}
                                      for l, r in decoded.items()}},
              "seconds": seconds, "layers": result_layers}
    write_text(out / "baselines.json", json.dumps(result, indent=2) + "\n")
    write_text(out / "baselines.md", markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
