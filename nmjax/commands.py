"""The commands of the command line: each reads its parsed arguments and calls the library.

Every user error raises NmjaxError, which `nmjax.cli.main` turns into a message and exit code 2.
"""
from __future__ import annotations

from .config import AUTHORS_READING, DecodeConfig
from .errors import NmjaxError
from .runfolder import layer_dir


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
    from .train import TrainConfig, train_on_simulation

    settings = TrainConfig(args.epochs, args.batch_size, args.lr, args.patience, args.dropout,
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
    from .simulate import load_config, simulate, write_simulated_fasta

    batch = simulate(load_config(args.dataset), args.split)
    if args.out.endswith((".fa", ".fasta", ".fa.gz", ".fasta.gz")):
        bed = write_simulated_fasta(batch, args.out)
        print(f"wrote {len(batch.labels)} sequences of split {args.split} to {args.out}, "
              f"their planted sites to {bed}")
        return 0
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

    from .devices import parse_size

    rounds = int(args.rounds) if args.rounds.isdigit() else args.rounds  # DecodeConfig checks it
    readings = AUTHORS_READING if args.authors_reading else {}
    overrides = {k: v for k, v in (("population", args.population),
                                   ("max_generations", args.max_generations),
                                   ("neuron_batch", args.batch),
                                   ("memory_budget", None if args.memory_budget is None
                                    else parse_size(args.memory_budget)),
                                   ("seeding", args.seeding), ("patience", args.patience),
                                   ("rounds_ratio", args.rounds_ratio),
                                   ("ratio_tie_margin", args.ratio_tie_margin),
                                   ("empty_bin", args.empty_bin),
                                   ("keep_initial_population",
                                    args.keep_initial_population or None),
                                   ("cap_enumerated", False if args.no_enumeration_cap else None))
                 if v is not None}
    return dataclasses.replace(DecodeConfig(method=args.method, mutation=args.mutation,
                                            rounds=rounds, precision=args.precision,
                                            segment_rule=args.segment_rule),
                               **{**readings, **overrides})


def cmd_decode(args) -> int:
    import nmjax
    from .decoder import decode
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
                  f"{layer_dir(args.out, layer)}/ (samples/, parts/, shards/)")
        print(f"when every shard of a layer is done: nmjax merge {args.out}")
        return 0
    results = decode(net, layers=layers, neurons=neurons, seed=args.seed, config=config,
                     out=args.out, model=str(args.model or "bundled example"))
    for layer, r in results.items():
        t = r.timings
        print(f"layer {layer}: {t['neurons']} neurons, receptive field {t['receptive_field']} bp, "
              f"{t['subsets']} subsets, {t['dead_neurons']} dead, rounds {r.rounds}; "
              f"wrote {layer_dir(args.out, layer)}/")
    if not args.no_report:
        from .matching import TomtomConfig
        from .report import finish_run

        analysis = finish_run(args.out, args.motif_db, args.release,
                              TomtomConfig(distance=args.distance))
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
              f"wrote {layer_dir(args.dir, layer)}/")
    return 0


def cmd_match(args) -> int:
    from .matching import TomtomConfig, match_run

    per_layer = match_run(args.dir, args.motif_db, args.release, TomtomConfig(distance=args.distance))
    for layer, matches in per_layer.items():
        found = sorted({m.query for m in matches if m.q_value < 0.01})
        print(f"layer {layer}: {len(found)} motifs match the database at q < 0.01; "
              f"{len(matches)} pairs (q <= 0.5) in {layer_dir(args.dir, layer)}/matches.tsv")
    return 0


def cmd_grammar(args) -> int:
    from .grammar import GrammarConfig, grammar_run
    from .matching import TomtomConfig

    tparams = TomtomConfig(distance=args.distance)
    params = GrammarConfig(segment_rule=args.rule)
    for layer, result in grammar_run(args.dir, args.motif_db, args.release, params,
                                     tparams=tparams).items():
        for neuron, g in result["neurons"].items():
            if g["text"]:
                print(f"layer {layer} neuron {neuron}: {g['text']}")
    print(f"wrote {args.dir}/grammars.tsv and layer*/grammar.tsv")
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
    from .matching import TomtomConfig
    from .report import build_report, finish_run

    if args.no_match:
        index = build_report(args.dir)
    else:
        index = finish_run(args.dir, args.motif_db, args.release,
                           TomtomConfig(distance=args.distance))["report"]
    print(f"report: {index}")
    return 0


def cmd_scan(args) -> int:
    import nmjax
    from .scan import ScanConfig, scan

    settings = ScanConfig(args.top, args.extend, args.p_value, args.chunk, args.batch)
    layers = parse_range(args.layers, "--layers") if args.layers else None
    neurons = parse_range(args.neurons, "--neurons") if args.neurons else None
    net = nmjax.load(args.model, args.architecture)
    results = scan(net, args.fasta, bed=args.bed, genome=args.genome, layers=layers,
                   neurons=neurons, settings=settings, out=args.out, decode_dir=args.dir,
                   progress=True)
    for layer, scans in results.items():
        profiled = sum(bool(s.profiles) for s in scans)
        print(f"layer {layer}: {len(scans)} neurons, top {settings.top} regions each, motif "
              f"profiles for {profiled}; wrote {layer_dir(args.out, layer)}/scan/")
    return 0


def cmd_swap(args) -> int:
    import nmjax
    from .swap import decoded_model, window_swap, write_swap

    model = args.model if args.model is not None else decoded_model(args.dir)
    result = window_swap(nmjax.load(model, args.architecture), args.dir, args.layer, args.neuron,
                         args.window, args.sick, args.consistent)
    best = max(range(len(result.f)), key=lambda k: result.f[k])
    print(f"layer {args.layer} neuron {args.neuron}: sick subset S{result.sick} f "
          f"{result.f_sick:.3g}, consistent S{result.consistent} f {result.f_consistent:.3g}; "
          f"best swap at {result.starts[best]}-{result.starts[best] + result.window}: f "
          f"{result.f[best]:.3g}")
    print(f"wrote {write_swap(args.dir, result)} (.json, .svg)")
    return 0


def cmd_space(args) -> int:
    import nmjax
    from .motifdb import jaspar_motif, load_motif_db
    from .spacing import spacing_scan, write_spacing

    names = [m.strip() for m in args.motifs.split(",")]
    if len(names) != 2:
        raise NmjaxError(f"--motifs takes two motifs, A,B (got {args.motifs!r})")
    if args.motif_db:
        db = {m.name: m for m in load_motif_db(args.motif_db)}
        db |= {m.alt_name: m for m in db.values() if m.alt_name}
        missing = [n for n in names if n not in db]
        if missing:
            raise NmjaxError(f"{args.motif_db}: no motif named {missing}")
        pair = [db[n] for n in names]
    else:
        pair = [jaspar_motif(n, args.release) for n in names]
    if (args.layer is None) == (not args.output):
        raise NmjaxError("give --layer L (a conv layer's neurons) or --output (the model outputs)")
    neurons = parse_range(args.neurons, "--neurons") if args.neurons else None
    result = spacing_scan(nmjax.load(args.model, args.architecture), pair[0], pair[1],
                          args.layer, parse_range(args.gaps, "--gaps"), args.samples, args.seed,
                          args.fasta, neurons)
    what = "neuron" if args.layer else "output"
    summary = result.summary()
    best = [row for b in result.backgrounds
            for row in [r for r in summary if r["background"] == b][:2]]
    for row in best:
        print(f"{row['background']:>8} {what} {row['response']}: peak at gap {row['peak_gap']} "
              f"({row['arrangement']}), {row['peak']:.3g}, {row['contrast']:.3g} above the median")
    print(f"wrote {write_spacing(args.out, result)} (.json, .svg)")
    return 0
