"""Command line: parses arguments and calls the library; every user error exits with code 2."""
from __future__ import annotations

import argparse
import sys

from .errors import NmjaxError


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", default=None,
                   help="model file: .keras, Keras HDF5 (.h5), weights-only .h5 (with "
                        "--architecture) or nmjax checkpoint (.npz); default: the bundled example")
    p.add_argument("--architecture", default=None,
                   help="model.to_json() file, for a weights-only HDF5 model")


def cmd_info(args) -> int:
    import nmjax

    net = nmjax.load(args.model, args.architecture)
    print(f"model: {args.model or 'bundled example'}  ({net.config.source})")
    header = ("layer", "kernel", "channels", "activation", "pool", "receptive_field", "shifts")
    rows = [(r["layer"], r["kernel_width"], r["channels"], r["activation"], r["pool"],
             f"{r['receptive_field']} bp", r["shift_multiplicity"]) for r in net.layer_table()]
    widths = [max(len(str(v)) for v in col) for col in zip(header, *rows)]
    for row in (header, *rows):
        print("  ".join(str(v).rjust(w) for v, w in zip(row, widths)))
    return 0


def cmd_train(args) -> int:
    from .simulate import load_config
    from .train import TrainSettings, train_on_simulation

    settings = TrainSettings(args.epochs, args.batch_size, args.lr, args.patience, args.dropout,
                             args.seed)
    _, metrics = train_on_simulation(load_config(args.dataset), args.arch, args.width, settings,
                                     args.out)
    for task, m in metrics["test"].items():
        print(f"{task:>24}  test AUPRC {m['auprc']:.3f}  AUROC {m['auroc']:.3f}")
    keras = f", {metrics['keras_export']}" if metrics.get("keras_export") else ""
    print(f"trained in {metrics['train_seconds']} s (best epoch {metrics['best_epoch']}); "
          f"wrote {args.out}/model.npz{keras}, planted.meme, tasks.json, metrics.json")
    return 0


def cmd_simulate(args) -> int:
    import numpy as np

    from .fileio import atomic_path
    from .simulate import load_config, simulate

    batch = simulate(load_config(args.dataset), args.split)
    with atomic_path(args.out) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, onehot=batch.onehot, labels=batch.labels)
    print(f"wrote {len(batch.labels)} sequences of split {args.split} to {args.out}")
    return 0


def parse_range(text: str, what: str) -> list[int]:
    """'1-3' / '0,4,7-9' -> sorted ints; a clear error otherwise."""
    out: set[int] = set()
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            out.update(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise NmjaxError(f"bad {what} {text!r}: use a number, a range like 1-3, or a list "
                         f"like 0,4,7-9") from None
    return sorted(out)


def decode_config(args):
    """The DecodeConfig of the decode settings on the command line (`_decode_settings_args`)."""
    import dataclasses

    from .decode import DecodeConfig
    from .distribute import parse_size

    rounds = int(args.rounds) if args.rounds.isdigit() else args.rounds  # DecodeConfig checks it
    overrides = {k: v for k, v in (("population", args.population),
                                   ("max_generations", args.max_generations),
                                   ("neuron_batch", args.batch),
                                   ("memory_budget", None if args.memory_budget is None
                                    else parse_size(args.memory_budget))) if v is not None}
    return dataclasses.replace(DecodeConfig(method=args.method, mutation=args.mutation,
                                            rounds=rounds, precision=args.precision),
                               **overrides)


def cmd_decode(args) -> int:
    import nmjax
    from .decode import decode
    from .distribute import Shard, decode_shard

    config = decode_config(args)
    layers = parse_range(args.layers, "--layers") if args.layers else None
    neurons = parse_range(args.neurons, "--neurons") if args.neurons else None
    shard = Shard.parse(args.shard) if args.shard else None
    net = nmjax.load(args.model, args.architecture)
    if shard is not None:
        done = decode_shard(net, shard, layers, neurons, args.seed, config, args.out,
                            model=str(args.model or "bundled example"))
        for layer, mine in done.items():
            print(f"layer {layer}: shard {args.shard} decoded {len(mine)} neurons into "
                  f"{args.out}/layer{layer}/ (samples/, parts/, shards/)")
        print(f"when every shard of a layer is done: nmjax merge {args.out}")
        return 0
    results = decode(net, layers=layers, neurons=neurons, seed=args.seed, config=config,
                     out=args.out, model=str(args.model or "bundled example"))
    for layer, r in results.items():
        t = r.timings
        print(f"layer {layer}: {t['neurons']} neurons, receptive field {t['receptive_field']} bp, "
              f"{t['subsets']} subsets, {t['dead_neurons']} dead, rounds {r.rounds}; "
              f"wrote {args.out}/layer{layer}/")
    if not args.no_report:
        from .matching import TomtomParams
        from .report import finish_run

        analysis = finish_run(args.out, args.motif_db, args.release,
                              TomtomParams(distance=args.distance))
        print(f"report: {analysis['report']}")
    return 0


def cmd_workflow(args) -> int:
    import shlex
    from pathlib import Path

    import nmjax
    from .workflow import Workflow, run_workflow, snakemake_command, write_workflow

    layers = parse_range(args.layers, "--layers") if args.layers else None
    neurons = parse_range(args.neurons, "--neurons") if args.neurons else None
    report_args = ["--release", args.release, "--distance", args.distance]
    if args.motif_db:
        report_args += ["--motif-db", str(Path(args.motif_db).resolve())]
    spec = Workflow(args.model, args.architecture, layers and tuple(layers),
                    neurons and tuple(neurons), args.seed, decode_config(args), args.shards,
                    args.gpus, not args.no_report, tuple(report_args))
    snakefile = write_workflow(nmjax.load(args.model, args.architecture), spec, args.out)
    print(f"wrote {snakefile} and its settings {args.out}/nmjax-workflow.json")
    if not args.run:
        print("run it (or resume it) with: "
              + shlex.join(snakemake_command(args.out, args.cores, args.snakemake_args)))
        return 0
    return run_workflow(args.out, args.cores, args.snakemake_args)


def cmd_merge(args) -> int:
    import nmjax
    from .distribute import merge, recorded_model

    model = args.model if args.model is not None else recorded_model(args.dir)
    layers = parse_range(args.layers, "--layers") if args.layers else None
    merged = merge(nmjax.load(model, args.architecture), args.dir, layers)
    if not merged:
        print(f"nothing to merge: every layer with shards in {args.dir} is merged "
              "(--layers merges one again)")
    for layer, r in merged.items():
        print(f"layer {layer}: merged {r.timings['neurons']} neurons from shards "
              f"{', '.join(r.timings['shards'])}, rounds {r.rounds}; "
              f"wrote {args.dir}/layer{layer}/")
    return 0


def cmd_match(args) -> int:
    from .matching import TomtomParams, match_run

    per_layer = match_run(args.dir, args.motif_db, args.release, TomtomParams(distance=args.distance))
    for layer, matches in per_layer.items():
        found = sorted({m.query for m in matches if m.q_value < 0.01})
        print(f"layer {layer}: {len(found)} motifs match the database at q < 0.01; "
              f"{len(matches)} pairs (q <= 0.5) in {args.dir}/layer{layer}/matches.tsv")
    return 0


def cmd_grammar(args) -> int:
    from .grammar import grammar_run
    from .matching import TomtomParams

    tparams = TomtomParams(distance=args.distance)
    for layer, result in grammar_run(args.dir, args.motif_db, args.release, tparams=tparams).items():
        for neuron, g in result["neurons"].items():
            if g["text"]:
                print(f"layer {layer} neuron {neuron}: {g['text']}")
    return 0


def cmd_diagnose(args) -> int:
    from .diagnose import diagnose_run, summary_text

    print(summary_text(diagnose_run(args.dir)))
    print(f"wrote {args.dir}/diagnose.json")
    return 0


def cmd_probe(args) -> int:
    import nmjax
    from .motifdb import jaspar_motif, load_motif_db
    from .probe import probe, summary_text, write_probe

    if bool(args.motifs) == bool(args.motif_db):
        raise NmjaxError("give the motifs to insert: --motifs MA1494.2,GFI1 (JASPAR IDs or TF "
                         "names) or --motif-db FILE (every motif of a MEME file)")
    motifs = (load_motif_db(args.motif_db) if args.motif_db else
              [jaspar_motif(m.strip(), args.release) for m in args.motifs.split(",")])
    layers = parse_range(args.layers, "--layers") if args.layers else None
    net = nmjax.load(args.model, args.architecture)
    rows = probe(net, motifs, layers, args.samples, args.seed, args.dir)
    print(summary_text(rows))
    write_probe(args.out, rows)
    print(f"wrote {args.out}")
    return 0


def cmd_report(args) -> int:
    from .matching import TomtomParams
    from .report import build_report, finish_run

    if args.no_match:
        index = build_report(args.dir)
    else:
        index = finish_run(args.dir, args.motif_db, args.release,
                           TomtomParams(distance=args.distance))["report"]
    print(f"report: {index}")
    return 0


def _motif_db_args(p: argparse.ArgumentParser) -> None:
    from .motifdb import DEFAULT_RELEASE

    p.add_argument("--motif-db", default=None,
                   help="MEME motif file to match against (default: JASPAR CORE vertebrates)")
    p.add_argument("--release", default=DEFAULT_RELEASE,
                   help=f"JASPAR release of the default database (default: {DEFAULT_RELEASE})")
    p.add_argument("--distance", default="correlation", choices=("correlation", "euclidean"),
                   help="Tomtom column distance (default: correlation, see nmjax.matching)")


def _analysis_args(p: argparse.ArgumentParser, db: bool = True) -> None:
    p.add_argument("dir", help="output folder of `nmjax decode`")
    if db:
        _motif_db_args(p)


def _decode_settings_args(p: argparse.ArgumentParser) -> None:
    """What to decode and the decoder's settings (`decode_config`)."""
    p.add_argument("--layers", default=None, help="conv layers, e.g. 1-3 (default: all)")
    p.add_argument("--neurons", default=None, help="neurons of each layer, e.g. 0-15 (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rounds", default="auto", help="decoupling rounds: auto (t-test rule) or N")
    p.add_argument("--method", default="neuronmotif",
                   choices=("neuronmotif", "kelley", "alipanahi", "saliency"))
    p.add_argument("--mutation", default="reference", choices=("reference", "paper", "continuous"),
                   help="GA mutation rule (default: reference)")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                   help="GA passes in bf16 or fp32; auto: bf16 below convs of >= 128 channels "
                        "(kept samples are re-scored in fp32 either way)")
    p.add_argument("--population", type=int, default=None,
                   help="GA population (default: the paper's clip(N/20*1000, 2000, 5000))")
    p.add_argument("--max-generations", type=int, default=None, help="GA cap (default: 200)")
    p.add_argument("--batch", type=int, default=None,
                   help="neurons per call of a layer's compiled GA program (default: 1 per device; "
                        "raise it on a GPU)")
    p.add_argument("--memory-budget", default=None,
                   help="temporary GA memory per device, e.g. 8G: lowers the neuron batch of a "
                        "layer to fit (default: no limit)")


def _report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-report", action="store_true",
                   help="skip matching, grammar, diagnostics and the HTML report")
    _motif_db_args(p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nmjax", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("info", help="print the conv layers, receptive fields and shift multiplicities")
    _model_args(p)
    p.set_defaults(func=cmd_info)
    p = sub.add_parser("train", help="train a conv-stack model on a simulated dataset "
                                     "(planted motif grammars)")
    p.add_argument("--dataset", required=True, help="simulation config (JSON or TOML)")
    p.add_argument("--arch", default="bd10",
                   help="basset, deepsea, bd5, bd10, dd10 or example5 (default: bd10)")
    p.add_argument("--width", type=float, default=0.25, help="width multiplier (default: 0.25)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--patience", type=int, default=4, help="early-stopping patience in epochs")
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0, help="initialisation and batch-order seed")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("simulate", help="write one split of a simulated dataset as .npz "
                                        "(onehot, labels)")
    p.add_argument("--dataset", required=True, help="simulation config (JSON or TOML)")
    p.add_argument("--split", default="train", choices=("train", "valid", "test"))
    p.add_argument("--out", required=True, help="output .npz file")
    p.set_defaults(func=cmd_simulate)
    p = sub.add_parser("decode", help="decode the motifs of conv neurons, layer by layer")
    _model_args(p)
    _decode_settings_args(p)
    p.add_argument("--out", default="nmjax-decode", help="output folder (default: nmjax-decode)")
    _report_args(p)
    p.add_argument("--shard", default=None,
                   help="i/n: decode only neurons with neuron %% n == i of each layer, writing "
                        "per-neuron files into --out; then `nmjax merge` (see docs/cluster.md)")
    p.set_defaults(func=cmd_decode)
    p = sub.add_parser("workflow", help="write (and with --run, run) a Snakemake workflow of "
                                        "a sharded decode: shards, merges, report")
    _model_args(p)
    _decode_settings_args(p)
    p.add_argument("--out", required=True,
                   help="folder of the Snakefile and of the decode's output")
    _report_args(p)
    p.add_argument("--shards", type=int, default=1, help="jobs per layer (default: 1)")
    p.add_argument("--gpus", type=int, default=0,
                   help="GPUs per shard job, Snakemake's gpu resource (default: 0)")
    p.add_argument("--run", action="store_true",
                   help="run the workflow with snakemake (arguments after -- go to snakemake, "
                        "e.g. -- --executor slurm --jobs 64)")
    p.add_argument("--cores", type=int, default=1,
                   help="local cores for snakemake, one per job (default: 1)")
    p.set_defaults(func=cmd_workflow, snakemake_args=[])
    p = sub.add_parser("merge", help="assemble the layer files of a --shard run once every "
                                     "shard of a layer is done")
    p.add_argument("dir", help="the shared --out folder of the shards")
    p.add_argument("model", nargs="?", default=None,
                   help="the model the shards decoded (default: the path they recorded)")
    p.add_argument("--architecture", default=None,
                   help="model.to_json() file, for a weights-only HDF5 model")
    p.add_argument("--layers", default=None,
                   help="layers to merge (default: every layer with shard records)")
    p.set_defaults(func=cmd_merge)
    p = sub.add_parser("match", help="Tomtom of decoded motifs against JASPAR or a MEME file")
    _analysis_args(p)
    p.set_defaults(func=cmd_match)
    p = sub.add_parser("grammar", help="motif dictionary and grammar (syntax) of every neuron")
    _analysis_args(p)
    p.set_defaults(func=cmd_grammar)
    p = sub.add_parser("diagnose", help="alive, sick and dead neurons per layer (text and JSON)")
    _analysis_args(p, db=False)
    p.set_defaults(func=cmd_diagnose)
    from .motifdb import DEFAULT_RELEASE

    p = sub.add_parser("probe", help="insert motifs into random windows: which neurons respond, "
                                     "and beyond what the decoded motifs reach?")
    _model_args(p)
    p.add_argument("--motifs", default=None, help="JASPAR matrix IDs or TF names, e.g. MA1494.2,GFI1")
    p.add_argument("--motif-db", default=None, help="or every motif of a MEME file")
    p.add_argument("--release", default=DEFAULT_RELEASE,
                   help=f"JASPAR release for --motifs (default: {DEFAULT_RELEASE})")
    p.add_argument("--layers", default=None, help="conv layers, e.g. 3-5 (default: all)")
    p.add_argument("--dir", default=None,
                   help="output folder of `nmjax decode`: compare with each neuron's decoded act")
    p.add_argument("--samples", type=int, default=500, help="windows per motif and layer")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="probe.tsv", help="TSV file of every (motif, neuron) row")
    p.set_defaults(func=cmd_probe)
    p = sub.add_parser("report", help="match, grammar, diagnose and the HTML report DIR/report/")
    _analysis_args(p)
    p.add_argument("--no-match", action="store_true",
                   help="only rebuild the HTML from existing matches.tsv and grammar.json")
    p.set_defaults(func=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    passthrough = []
    if argv[:1] == ["workflow"] and "--" in argv:  # the rest goes to snakemake
        argv, passthrough = argv[:argv.index("--")], argv[argv.index("--") + 1:]
    args = build_parser().parse_args(argv)
    if passthrough:
        args.snakemake_args = passthrough
    try:
        return args.func(args)
    except NmjaxError as e:
        print(f"nmjax: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nmjax: interrupted; finished work is kept, run the same command to resume",
              file=sys.stderr)
        return 130
