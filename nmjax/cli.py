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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nmjax", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("info", help="print the conv layers, receptive fields and shift multiplicities")
    _model_args(p)
    p.set_defaults(func=cmd_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except NmjaxError as e:
        print(f"nmjax: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nmjax: interrupted; finished work is kept, run the same command to resume",
              file=sys.stderr)
        return 130
