"""Command line: parses arguments and calls the library; every user error exits with code 2."""
from __future__ import annotations

import argparse
import sys

from . import commands
from .config import (EMPTY_BIN_RULES, METHODS, MUTATION_RULES, PRECISION_CHOICES, RATIO_RULES,
                     SEEDING_RULES, SEGMENT_RULES, DecodeConfig)
from .errors import NmjaxError


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", default=None,
                   help="model file: .keras, Keras HDF5 (.h5), weights-only .h5 (with "
                        "--architecture) or nmjax checkpoint (.npz); default: the bundled example")
    p.add_argument("--architecture", default=None,
                   help="model.to_json() file, for a weights-only HDF5 model")


def _motif_db_args(p: argparse.ArgumentParser) -> None:
    from .motifdb import DEFAULT_RELEASE

    p.add_argument("--motif-db", default=None,
                   help="MEME motif file to match against (default: JASPAR CORE vertebrates)")
    p.add_argument("--release", default=DEFAULT_RELEASE,
                   help=f"JASPAR release of the default database (default: {DEFAULT_RELEASE})")
    p.add_argument("--distance", default="correlation", choices=("correlation", "euclidean"),
                   help="Tomtom column distance (default: correlation, see nmjax.matching)")


def _dir_model_args(p: argparse.ArgumentParser, dir_help: str, model_help: str) -> None:
    """A folder, then optionally the model it came from (merge, swap)."""
    p.add_argument("dir", help=dir_help)
    p.add_argument("model", nargs="?", default=None, help=model_help)
    p.add_argument("--architecture", default=None,
                   help="model.to_json() file, for a weights-only HDF5 model")


def _analysis_args(p: argparse.ArgumentParser, db: bool = True) -> None:
    p.add_argument("dir", help="output folder of `nmjax decode`")
    if db:
        _motif_db_args(p)


def _validation_commands(sub) -> None:
    """The parsers of scan, swap and space (reading real or inserted sequences)."""
    from .motifdb import DEFAULT_RELEASE

    p = sub.add_parser("scan", help="scan sequences with the neurons of conv layers: top "
                                    "regions, their logo and motif-position profiles")
    _model_args(p)
    p.add_argument("--fasta", default=None, help="FASTA file (plain or .gz) of sequences to scan")
    p.add_argument("--bed", default=None, help="or BED intervals to scan, on --genome")
    p.add_argument("--genome", default=None, help="genome FASTA (plain or .gz) for --bed")
    p.add_argument("--layers", default=None, help="conv layers, e.g. 3-5 (default: all)")
    p.add_argument("--neurons", default=None, help="neurons of each layer (default: all)")
    p.add_argument("--top", type=int, default=3000, help="top regions per neuron (default: 3000)")
    p.add_argument("--extend", type=int, default=1000,
                   help="bp around each region for the motif profiles (default: 1000)")
    p.add_argument("--p-value", type=float, default=1e-4,
                   help="motif site threshold, FIMO's p-value (default: 1e-4)")
    p.add_argument("--dir", default=None,
                   help="output folder of `nmjax decode` whose neuron motifs are profiled "
                        "(default: --out)")
    p.add_argument("--chunk", type=int, default=4096, help="bases per scanned chunk")
    p.add_argument("--batch", type=int, default=4, help="chunks per call")
    p.add_argument("--out", required=True, help="output folder (DIR/layer{L}/scan/)")
    p.set_defaults(func=commands.cmd_scan)
    p = sub.add_parser("swap", help="window swap between a sick and a consistent subset's "
                                    "consensus (the paper's problematic-neuron analysis)")
    _dir_model_args(p, "output folder of `nmjax decode`",
                    "the decoded model (default: the one recorded in DIR/run.json)")
    p.add_argument("--layer", type=int, required=True)
    p.add_argument("--neuron", type=int, required=True)
    p.add_argument("--window", type=int, default=None,
                   help="window bp (default: the paper's 51, at most half the receptive field)")
    p.add_argument("--sick", type=int, default=None,
                   help="subset to repair (default: lowest conact / act)")
    p.add_argument("--consistent", type=int, default=None,
                   help="subset whose bases are swapped in (default: highest conact / act)")
    p.set_defaults(func=commands.cmd_swap)
    p = sub.add_parser("space", help="insert two motifs at every gap: mean response per gap "
                                     "(does a grammar's spacing matter?)")
    _model_args(p)
    p.add_argument("--motifs", required=True, help="two motifs A,B: JASPAR IDs or TF names "
                                                   "(or names in --motif-db)")
    p.add_argument("--motif-db", default=None, help="MEME file holding the motifs")
    p.add_argument("--release", default=DEFAULT_RELEASE,
                   help=f"JASPAR release for --motifs (default: {DEFAULT_RELEASE})")
    p.add_argument("--layer", type=int, default=None, help="conv layer whose neurons respond")
    p.add_argument("--output", action="store_true", help="or the model outputs respond")
    p.add_argument("--neurons", default=None, help="neurons of the layer (default: all)")
    p.add_argument("--gaps", default="0-40", help="gaps in bp (default: 0-40)")
    p.add_argument("--fasta", default=None,
                   help="also a dinucleotide-shuffled background drawn from these sequences")
    p.add_argument("--samples", type=int, default=200, help="windows per gap and arrangement")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="nmjax-space",
                   help="output folder (DIR/layer{L}/spacing/; a decode folder puts the plots "
                        "in its report)")
    p.set_defaults(func=commands.cmd_space)


def _reading_args(p: argparse.ArgumentParser) -> None:
    """Where the authors' code reads the method differently (see nmjax.DecodeConfig)."""
    g = p.add_argument_group("method readings", "the paper's reading by default; the authors' "
                             "code's with these (bench/fidelity.py measures each)")
    g.add_argument("--authors-reading", action="store_true",
                   help="every rule below as the authors' code has it; a choice flag given "
                        "with it sets that rule")
    g.add_argument("--seeding", default=None, choices=SEEDING_RULES,
                   help="lower-layer motifs in the GA's first population: whole free windows "
                        "(default) or the authors' (IC > 1 cores protected, every subset, "
                        "c in 20 equal-mass bins)")
    g.add_argument("--keep-initial-population", action="store_true",
                   help="the first population joins the sample set (authors)")
    g.add_argument("--no-enumeration-cap", action="store_true",
                   help="keep every enumerated window with f > 0 (authors; default: cap)")
    g.add_argument("--patience", type=int, default=None,
                   help="GA stop: generations without a better mean (paper 10, authors 11)")
    g.add_argument("--rounds-ratio", default=None, choices=RATIO_RULES,
                   help="rounds rule ratio: max conact / max act (default) or the max over "
                        "subsets of conact / act (authors)")
    g.add_argument("--ratio-tie-margin", type=float, default=None,
                   help="rounds decisions within this ratio margin pass (default: 1e-5)")
    g.add_argument("--empty-bin", default=None, choices=EMPTY_BIN_RULES,
                   help="an empty PPM bin reuses the nearest bin (default) or the one above "
                        "(authors)")


def _decode_settings_args(p: argparse.ArgumentParser) -> None:
    """What to decode and the decoder's settings (`decode_config`)."""
    p.add_argument("--layers", default=None, help="conv layers, e.g. 1-3 (default: all)")
    p.add_argument("--neurons", default=None, help="neurons of each layer, e.g. 0-15 (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rounds", default=str(DecodeConfig.rounds), help="decoupling rounds: auto (t-test rule) or N")
    p.add_argument("--method", default=DecodeConfig.method, choices=METHODS)
    p.add_argument("--mutation", default=DecodeConfig.mutation, choices=MUTATION_RULES,
                   help=f"GA mutation rule (default: {DecodeConfig.mutation})")
    p.add_argument("--precision", default=DecodeConfig.precision, choices=PRECISION_CHOICES,
                   help="GA passes in bf16 or fp32; auto: bf16 below convs of >= 128 channels "
                        "(kept samples are re-scored in fp32 either way)")
    p.add_argument("--population", type=int, default=None,
                   help="GA population (default: the paper's clip(N/20*1000, 2000, 5000))")
    p.add_argument("--max-generations", type=int, default=None, help="GA cap (default: "
                   f"{DecodeConfig.max_generations})")
    p.add_argument("--batch", type=int, default=None,
                   help="neurons per call of a layer's compiled GA program (default: 1 per device; "
                        "raise it on a GPU)")
    p.add_argument("--memory-budget", default=None,
                   help="temporary GA memory per device, e.g. 8G: lowers the neuron batch of a "
                        "layer to fit (default: no limit)")
    p.add_argument("--segment-rule", default=DecodeConfig.segment_rule, choices=SEGMENT_RULES,
                   help="how PPMs are cut into motifs for motifs.meme and the grammar "
                        f"(default: {DecodeConfig.segment_rule}; see README, Matching and grammar)")
    _reading_args(p)


def _report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-report", action="store_true",
                   help="skip matching, grammar, diagnostics and the HTML report")
    _motif_db_args(p)


def _model_commands(sub) -> None:
    """info, train, simulate."""
    p = sub.add_parser("info", help="print the conv layers, receptive fields and shift multiplicities")
    _model_args(p)
    p.set_defaults(func=commands.cmd_info)
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
    p.set_defaults(func=commands.cmd_train)
    p = sub.add_parser("simulate", help="write one split of a simulated dataset as .npz "
                                        "(onehot, labels), or as FASTA (.fa, .fa.gz) with "
                                        "its planted sites as BED")
    p.add_argument("--dataset", required=True, help="simulation config (JSON or TOML)")
    p.add_argument("--split", default="train", choices=("train", "valid", "test"))
    p.add_argument("--out", required=True,
                   help="output .npz file, or .fa / .fa.gz (then also <stem>.sites.bed)")
    p.set_defaults(func=commands.cmd_simulate)


def _decode_commands(sub) -> None:
    """decode, workflow, merge."""
    p = sub.add_parser("decode", help="decode the motifs of conv neurons, layer by layer")
    _model_args(p)
    _decode_settings_args(p)
    p.add_argument("--out", default="nmjax-decode", help="output folder (default: nmjax-decode)")
    _report_args(p)
    p.add_argument("--shard", default=None,
                   help="i/n: decode only neurons with neuron %% n == i of each layer, writing "
                        "per-neuron files into --out; then `nmjax merge` (see docs/cluster.md)")
    p.set_defaults(func=commands.cmd_decode)
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
    p.set_defaults(func=commands.cmd_workflow, snakemake_args=[])
    p = sub.add_parser("merge", help="assemble the layer files of a --shard run once every "
                                     "shard of a layer is done")
    _dir_model_args(p, "the shared --out folder of the shards",
                    "the model the shards decoded (default: the path they recorded)")
    p.add_argument("--layers", default=None,
                   help="layers to merge (default: every layer with shard records)")
    p.set_defaults(func=commands.cmd_merge)


def _analysis_commands(sub) -> None:
    """match, grammar, diagnose, probe, report."""
    p = sub.add_parser("match", help="Tomtom of decoded motifs against JASPAR or a MEME file")
    _analysis_args(p)
    p.set_defaults(func=commands.cmd_match)
    p = sub.add_parser("grammar", help="motif dictionary and grammar (syntax) of every neuron, "
                                       "and the model's grammars ranked by neurons")
    _analysis_args(p)
    p.add_argument("--rule", default=None, choices=SEGMENT_RULES,
                   help="segmentation rule (default: the one the decode used, run.json)")
    p.set_defaults(func=commands.cmd_grammar)
    p = sub.add_parser("diagnose", help="alive, sick and dead neurons per layer (text and JSON)")
    _analysis_args(p, db=False)
    p.set_defaults(func=commands.cmd_diagnose)
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
    p.set_defaults(func=commands.cmd_probe)
    p = sub.add_parser("report", help="match, grammar, diagnose and the HTML report DIR/report/")
    _analysis_args(p)
    p.add_argument("--no-match", action="store_true",
                   help="only rebuild the HTML from existing matches.tsv and grammar.json")
    p.set_defaults(func=commands.cmd_report)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nmjax", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _model_commands(sub)
    _decode_commands(sub)
    _analysis_commands(sub)
    _validation_commands(sub)
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
    except OSError as e:  # a full disk, a read-only or vanished folder: no traceback
        print(f"nmjax: error: {e}; files are written whole or not at all, so finished work "
              "is kept: fix the cause and run the same command to resume", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nmjax: interrupted; finished work is kept, run the same command to resume",
              file=sys.stderr)
        return 130
