"""nmjax's reading of each method rule against the authors' code's, by measurement (issue 13).

    python bench/fidelity.py [--model M --tasks TASKS.json] [--layers 1-5] [--neurons 0-7]
        [--variants default,seeding,...] [--seed 0] [--population N] [--max-generations N]
        [--tag NAME] [--out bench/results] [--work /tmp/nmjax-fidelity]

Decodes the model once per variant: `default` (DecodeConfig's defaults), one variant per rule
with the authors' reading of that rule only (`VARIANTS`), `no-tie-margin` (the rounds rule
without its tie margin) and `authors` (every rule as the authors' code has it:
`nmjax.config.AUTHORS_READING`). Each decode is followed by the usual analysis
(`nmjax.report.finish_run`: Tomtom against JASPAR CORE vertebrates or --motif-db, grammar,
diagnostics, report). Per variant and layer it records: the planted motifs (the tasks' JASPAR
matrices, `nmjax.simulate.planted_motifs`) that some decoded motif matches at q < 0.01, the
decoupling rounds chosen and the rounds rule's test of each round, the layer-(l-1) motifs placed
per initial GA sequence (`nmjax.ga.motifs_placed`: exactly the GA's first population),
GA generations, samples kept, grammar lines, and the seconds of the decode and the analysis.
Writes fidelity[_TAG].md and .json to --out; the decode folders go to
--work/<TAG or untagged>/<variant> (give each model its own --tag: decode resumes a folder
without checking which model wrote it). A rerun reuses what is there and says so, as its
times then do not count.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import time
from pathlib import Path

import jax
import numpy as np

import nmjax
from nmjax.commands import parse_range
from nmjax.config import AUTHORS_READING, DecodeConfig
from nmjax.decoder import decode, neuron_key
from nmjax.example import example_tasks_path
from nmjax.fileio import write_text
from nmjax.ga import motifs_placed
from nmjax.matching import read_matches
from nmjax.report import finish_run
from nmjax.runfolder import load_layer
from nmjax.seeding import seeding_for
from nmjax.simulate import load_config, planted_motifs

# variant name and issue-13 item of each of the authors' rules (AUTHORS_READING)
RULES = {"seeding": ("seeding", 1), "rounds_ratio": ("rounds-ratio", 2),
         "keep_initial_population": ("initial-population", 3),
         "cap_enumerated": ("enumeration", 4), "patience": ("patience", 5),
         "empty_bin": ("empty-bin", 6)}
VARIANTS = {"default": {},
            **{RULES[k][0]: {k: v} for k, v in AUTHORS_READING.items()},
            "no-tie-margin": {"ratio_tie_margin": 0.0},
            "authors": dict(AUTHORS_READING)}
ITEMS = {RULES[k][0]: RULES[k][1] for k in AUTHORS_READING} | {"no-tie-margin": 2,
                                                                "authors": "1-6"}
Q = 0.01
PLACED_CHUNK = 16  # neurons per call when counting placed motifs


def planted_ids(tasks: Path) -> dict[str, str]:
    """{JASPAR matrix ID: TF name} of the motifs the tasks plant."""
    out = {}
    for m in planted_motifs(load_config(tasks)):
        mid, name = ((m.name, m.alt_name) if re.fullmatch(r"MA\d{4}\.\d+", m.name)
                     else (m.alt_name, m.name))
        out[mid] = name
    return out


def placed_per_sequence(net, layer: int, config: DecodeConfig, work: Path, seed: int
                        ) -> dict | None:
    """Layer-(l-1) motifs written into the GA's initial sequences of every decoded neuron of
    `layer`: mean and share of sequences with 0, 1, 2, ... (None: layer not seeded)."""
    below = load_layer(work, layer - 1) if layer > 1 else None
    current = load_layer(work, layer)
    if below is None or current is None or not config.seed_from_previous \
            or net.receptive_field(layer) < config.enumerate_below:
        return None
    neurons = sorted(current.neurons)
    counts = []
    for i in range(0, len(neurons), PLACED_CHUNK):
        chunk = neurons[i:i + PLACED_CHUNK]
        seeding = seeding_for(net, layer, chunk, below, config.seeding)
        counts.append(motifs_placed(net, layer, chunk, [neuron_key(seed, layer, n)
                                                        for n in chunk], config, seeding))
    counts = np.concatenate(counts).ravel()
    share = np.bincount(counts) / len(counts)
    return {"mean": float(counts.mean()), "share": [round(float(s), 4) for s in share]}


def grammar_lines(layer_dir: Path) -> list[str] | None:
    """The non-empty grammar lines of a layer's grammar.json (None if it has none)."""
    path = layer_dir / "grammar.json"
    if not path.exists():
        return None
    neurons = json.loads(path.read_text()).get("neurons", {})
    return sorted(g["text"] for g in neurons.values() if isinstance(g, dict) and g.get("text"))


def layer_record(net, layer: int, info: dict, config: DecodeConfig, work: Path, seed: int,
                 planted: dict[str, str]) -> dict:
    matches = read_matches(work / f"layer{layer}" / "matches.tsv")
    found = sorted({m.target for m in matches if m.target in planted and m.q_value < Q})
    lines = grammar_lines(work / f"layer{layer}")
    return {"receptive_field": info["receptive_field"], "neurons": info["neurons"],
            "planted_q01": [f"{t} {planted[t]}" for t in found],
            "rounds": info["rounds"], "rounds_tests": info.get("rounds_tests", []),
            "motifs_placed": placed_per_sequence(net, layer, config, work, seed),
            "generations": info["generations"], "samples_kept": info["samples_kept"],
            "dead_neurons": info["dead_neurons"], "subsets": info["subsets"],
            "grammar_lines": lines,
            "resumed": info["neurons_sampled_this_run"] < info["neurons"],
            "seconds_sampling_per_neuron": info["seconds_sampling_per_neuron"],
            "seconds_decoupling_per_neuron": info["seconds_decoupling_per_neuron"]}


def run_variant(net, model: str, name: str, config: DecodeConfig, args, planted) -> dict:
    work = args.work / (args.tag or "untagged") / name  # a tag per model: decode resumes
    t0 = time.perf_counter()
    decode(net, layers=args.layers, neurons=args.neurons, seed=args.seed, config=config,
           out=work, model=model)
    t1 = time.perf_counter()
    finish_run(work, args.motif_db)
    t2 = time.perf_counter()
    run = json.loads((work / "run.json").read_text())
    layers = {str(l): layer_record(net, l, run["layers"][str(l)], config, work, args.seed,
                                   planted) for l in args.layers}
    recovered = sorted({t for r in layers.values() for t in r["planted_q01"]})
    return {"overrides": VARIANTS[name], "planted_q01": recovered, "layers": layers,
            "seconds": {"decode": t1 - t0, "analysis": t2 - t1},
            "resumed": any(r["resumed"] for r in layers.values())}


def _cell(per_layer: dict, fmt) -> str:
    return " ".join(f"L{l}:{fmt(r)}" for l, r in per_layer.items())


def _placed(r: dict) -> str:
    return "-" if r["motifs_placed"] is None else f"{r['motifs_placed']['mean']:.2f}"


def _generations(r: dict) -> str:
    return f"{r['generations']['mean']:.1f}"


def _grammar(r: dict) -> str:
    return "-" if r["grammar_lines"] is None else str(len(r["grammar_lines"]))


def _rounds(r: dict) -> str:
    tests = r["rounds_tests"]
    last = tests[-1] if tests else None
    if last is None or last["ratio"] is None:
        return str(r["rounds"])
    p = "" if last["p"] is None else f", p {last['p']:.3f}"
    return f"{r['rounds']} (mean {last['ratio']['mean']:.3f}{p}{', tie' if last['tie'] else ''})"


def markdown(result: dict) -> str:
    s = result["settings"]
    default = set(result["variants"].get("default", {}).get("planted_q01", []))
    lines = [f"# Method fidelity: nmjax's reading vs the authors' code ({s['model']})", "",
             f"Layers {s['layers']}, neurons {s['neurons'] or 'all'}, seed {s['seed']}, "
             f"population {s['population'] or 'the paper default'}, max generations "
             f"{s['max_generations']}; {s['planted_total']} planted matrices ({s['tasks']}); "
             f"matching: Tomtom against {s['motif_db'] or 'JASPAR CORE vertebrates'}, a "
             f"planted matrix is recovered when a decoded motif of the layer matches it at "
             f"q < {Q}. Machine: {s['machine']}."
             + (" Some variants resumed an earlier run: their times do not count."
                if any(v["resumed"] for v in result["variants"].values()) else ""), "",
             "| variant | item | settings | planted q<0.01 | vs default | rounds (last test) | "
             "motifs placed per sequence | mean generations | grammar lines | decode s | "
             "analysis s |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, v in result["variants"].items():
        found = set(v["planted_q01"])
        delta = (f"+{len(found - default)} -{len(default - found)}" if name != "default"
                 else "")
        lines.append(
            f"| {name} | {ITEMS.get(name, '')} | {v['overrides'] or 'defaults'} | "
            f"{len(found)}/{s['planted_total']} | {delta} | {_cell(v['layers'], _rounds)} | "
            f"{_cell(v['layers'], _placed)} | "
            f"{_cell(v['layers'], _generations)} | {_cell(v['layers'], _grammar)} | "
            f"{v['seconds']['decode']:.0f} | {v['seconds']['analysis']:.0f} |")
    lines += ["", "Planted matrices recovered per layer:", "",
              "| variant | " + " | ".join(f"L{l}" for l in s["layers"]) + " |",
              "|---|" + "---|" * len(s["layers"])]
    for name, v in result["variants"].items():
        lines.append(f"| {name} | " + " | ".join(
            ", ".join(t.split(" ", 1)[1] for t in v["layers"][str(l)]["planted_q01"]) or "-"
            for l in s["layers"]) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="model file (default: the bundled example)")
    ap.add_argument("--tasks", default=None,
                    help="the simulation config the model was trained on (its planted motifs; "
                         "default: the bundled example's tasks.json)")
    ap.add_argument("--layers", default=None, help="conv layers, e.g. 1-3 (default: all)")
    ap.add_argument("--neurons", default=None, help="neurons of each layer (default: all)")
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help=f"comma list of {', '.join(VARIANTS)} (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--population", type=int, default=None, help="GA population (default: paper)")
    ap.add_argument("--max-generations", type=int, default=200)
    ap.add_argument("--batch", type=int, default=1, help="neurons per GA call (default: 1)")
    ap.add_argument("--motif-db", default=None, help="MEME file to match (default: JASPAR)")
    ap.add_argument("--tag", default="", help="results file name: fidelity_TAG.md/.json")
    ap.add_argument("--out", default="bench/results", help="folder of the results files")
    ap.add_argument("--work", default="/tmp/nmjax-fidelity",
                    help="decode folders, one per variant, reused on a rerun")
    args = ap.parse_args(argv)
    names = [v.strip() for v in args.variants.split(",")]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    net = nmjax.load(args.model)
    args.layers = parse_range(args.layers, "--layers") if args.layers else list(
        range(1, net.num_conv_layers + 1))
    args.neurons = parse_range(args.neurons, "--neurons") if args.neurons else None
    args.work = Path(args.work)
    tasks = Path(args.tasks) if args.tasks else example_tasks_path()
    planted = planted_ids(tasks)
    base = DecodeConfig(population=args.population, max_generations=args.max_generations,
                        neuron_batch=args.batch)
    model = str(args.model or "bundled example")
    result = {"settings": {"model": model, "tasks": str(tasks), "layers": args.layers,
                           "neurons": args.neurons, "seed": args.seed,
                           "population": args.population, "max_generations":
                           args.max_generations, "motif_db": args.motif_db,
                           "planted": planted, "planted_total": len(planted),
                           "machine": f"{os.cpu_count()} CPU cores, JAX on "
                           f"{jax.default_backend()}"},
              "variants": {}}
    stem = f"fidelity_{args.tag}" if args.tag else "fidelity"
    for name in names:
        config = dataclasses.replace(base, **VARIANTS[name])
        result["variants"][name] = run_variant(net, model, name, config, args, planted)
        write_text(Path(args.out) / f"{stem}.json", json.dumps(result, indent=2) + "\n")
        write_text(Path(args.out) / f"{stem}.md", markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
