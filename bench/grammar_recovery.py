"""Are the planted grammars read back? The README's decode per seed, then the grammar lines.

For each seed, `python -m nmjax decode [MODEL] --seed S --out DIR` (the README's first
command), then every neuron's line in DIR/layer*/grammar.tsv that pairs CTCF with a CEBP or
an NFI with an NFI, checked against the planted CTCF-6N-CEBPB and NFIX-[10-20N]-NFIX:

- hit: some line reads CTCF-6N-CEBPB (either orientation) / NFIX-[a-bN]-NFIX, 8 <= a <= b <= 22;
- wrong: a line pairing CTCF with CEBPB at another gap, or NFI with NFI outside 8..22;
- front page: report/index.html's headline names both;
- for every such line, the gap at which that neuron itself responds most to the planted
  matrices (spacing scan): whether a line at another gap is what the neuron encodes.
Paralog names (CEBPE for CEBPB, NFIC for NFIX) are counted separately ("family").

    python bench/grammar_recovery.py [--model M] [--seeds 0,1,2] [--out-root DIR] [--reuse]
        [--rule reference|paper] [--name example] [--decode-args '--neurons 0-31']

Writes bench/results/grammar_recovery[_NAME].md and .json. --reuse skips the decode of a seed
whose DIR holds a finished report and reruns the grammar stage and the report on it (with
--rule when given); the decode + analysis time of a seed is the one recorded in DIR when it
was decoded (DIR/grammar_recovery_decode.json, with the load average after it).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from nmjax.fileio import write_text  # noqa: E402

RESULTS = Path(__file__).parent / "results"
DECODE_TIME = "grammar_recovery_decode.json"   # in a decode folder: its decode + analysis time
TOKEN = re.compile(r"(\(overlap [^)]*\)|\[[^\]]*\]|-?\d+N)")


def parse_line(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Motif names and gap intervals (lo, hi) of a grammar line (overlaps as negative)."""
    parts = [p for p in TOKEN.split(text) if p]
    names, gaps = [], []
    for p in parts:
        p = p.strip("-")
        if not p:
            continue
        if TOKEN.fullmatch(p):
            nums = [int(x) for x in re.findall(r"\d+", p)]
            if p.startswith("(overlap"):
                gaps.append((-max(nums), -min(nums)))
            elif "overlap" in p:
                gaps.append((-nums[0], nums[1]))
            else:
                gaps.append((min(nums), max(nums)))
        else:
            names.append(p)
    return names, gaps


def classify(text: str) -> list[dict]:
    """Every adjacent pair of a line that is CTCF+CEBP or NFI+NFI, with its gap and verdict."""
    names, gaps = parse_line(text)
    out = []
    for (a, b), (lo, hi) in zip(zip(names, names[1:]), gaps):
        pair = {a.upper(), b.upper()}
        if "CTCF" in pair and any(n.startswith("CEBP") for n in pair):
            exact = pair == {"CTCF", "CEBPB"}
            out.append({"kind": "CTCF-CEBP", "gap": [lo, hi], "exact_names": exact,
                        "ok": lo == hi == 6})
        elif all(n.startswith("NFI") for n in (a.upper(), b.upper())):
            exact = a.upper() == b.upper() == "NFIX"
            out.append({"kind": "NFI-NFI", "gap": [lo, hi], "exact_names": exact,
                        "ok": 8 <= lo <= hi <= 22})
    return out


PLANTED = {"CTCF-CEBP": ("MA0139.2", "MA0466.4"), "NFI-NFI": ("MA1528.2", "MA1528.2")}


def spacing_checks(model: str | None, rows: list[dict]) -> None:
    """Per pair of a line, the gap at which the neuron itself responds most to the planted
    matrices (`nmjax.spacing.spacing_scan`, uniform background, best of the 8 arrangements):
    does the line state what the neuron encodes, whatever the planted rule?"""
    import nmjax
    from nmjax.motifdb import jaspar_motif
    from nmjax.spacing import spacing_scan

    net = nmjax.load(model)
    for row in rows:
        for pair in row["pairs"]:
            a, b = (jaspar_motif(m) for m in PLANTED[pair["kind"]])
            room = net.receptive_field(row["layer"]) - len(a.ppm) - len(b.ppm)
            result = spacing_scan(net, a, b, row["layer"], gaps=range(0, room + 1),
                                  neurons=[row["neuron"]])
            best = [x for x in result.summary() if x["background"] == "uniform"][0]
            b = list(result.backgrounds).index("uniform")
            curve = result.mean[b, list(result.arrangements).index(best["arrangement"]), :, 0]
            gaps = np.array(list(result.gaps))
            inside = (gaps >= pair["gap"][0]) & (gaps <= pair["gap"][1])
            pair["network_peak_gap"] = best["peak_gap"]
            pair["peak_in_line"] = pair["gap"][0] - 1 <= best["peak_gap"] <= pair["gap"][1] + 1
            pair["response_in_line"] = float(curve[inside].max()) if inside.any() else None
            pair["response_peak"] = best["peak"]
            pair["response_median"] = float(np.median(curve))


def read_lines(out: Path) -> list[dict]:
    rows = []
    for tsv in sorted(out.glob("layer*/grammar.tsv"), key=lambda p: int(p.parent.name[5:])):
        layer = int(tsv.parent.name[5:])
        for line in tsv.read_text().splitlines()[1:]:
            neuron, text, support, share = line.split("\t")[:4]
            pairs = classify(text)
            if pairs:
                rows.append({"layer": layer, "neuron": int(neuron), "line": text,
                             "support": support, "share": share, "pairs": pairs})
    return rows


def verdict(rows: list[dict], index_html: str) -> dict:
    pairs = [(r, p) for r in rows for p in r["pairs"]]
    hard = [r for r, p in pairs if p["kind"] == "CTCF-CEBP" and p["ok"]]
    soft = [r for r, p in pairs if p["kind"] == "NFI-NFI" and p["ok"]]
    head = index_html.split("<h2>Run</h2>")[0]
    return {
        "ctcf_6n_cebpb": any(p["exact_names"] for r, p in pairs if p["kind"] == "CTCF-CEBP" and p["ok"]),
        "ctcf_6n_cebp_family": bool(hard),
        "nfix_soft": any(p["exact_names"] for r, p in pairs if p["kind"] == "NFI-NFI" and p["ok"]),
        "nfi_soft_family": bool(soft),
        "wrong_lines": [f"L{r['layer']} N{r['neuron']}: {r['line']}" for r, p in pairs if not p["ok"]],
        "front_page_names_both": bool(re.search(r"CTCF-6N-CEBP|CEBP\w*-6N-CTCF", head))
        and bool(re.search(r"NFI\w*-\[\d+-\d+N\]-NFI", head)),
    }


def run_seed(model: str | None, seed: int, out: Path, reuse: bool, rule: str | None,
             extra: list[str]) -> dict:
    t0 = time.perf_counter()
    if not (reuse and (out / "report" / "index.html").is_file()):
        cmd = [sys.executable, "-m", "nmjax", "decode"] + ([model] if model else []) + [
            "--seed", str(seed), "--out", str(out)] + extra
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        decoded = True
        write_text(out / DECODE_TIME, json.dumps({"seconds": time.perf_counter() - t0,
                                                  "load_after": os.getloadavg()}))
    else:
        decoded = False
    grammar_seconds = None
    if rule or not decoded:   # the grammar stage of this code on the decoded PPMs
        t1 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "nmjax", "grammar", str(out)]
                       + (["--rule", rule] if rule else []), check=True, stdout=subprocess.DEVNULL)
        grammar_seconds = time.perf_counter() - t1   # with the process start and imports
        subprocess.run([sys.executable, "-m", "nmjax", "report", str(out), "--no-match"],
                       check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    run = json.loads((out / "run.json").read_text())
    analysis = json.loads((out / "analysis.json").read_text())
    rows = read_lines(out)
    spacing_checks(model, rows)
    timed = out / DECODE_TIME
    return {"seed": seed, "dir": str(out), "decoded_now": decoded, "wall_seconds": wall,
            "decode": json.loads(timed.read_text()) if timed.is_file() else None,
            "decode_args": " ".join(extra),
            "rounds": {l: v["rounds"] for l, v in run["layers"].items()},
            "grammar_seconds": grammar_seconds or analysis["seconds"].get("grammar"),
            "rule": json.loads((out / "layer1" / "grammar.json").read_text())["segment_rule"],
            "lines": rows, "verdict": verdict(rows, (out / "report" / "index.html").read_text())}


def decode_time(decode: dict) -> str:
    load = decode.get("load_after")
    note = f" ({decode['note']})" if decode.get("note") else ""
    return (f"{decode['seconds'] / 60:.1f} min" + (f" (load after {load[0]:.1f})" if load else "")
            + note + " |")


def markdown(name: str, model: str | None, results: list[dict]) -> str:
    out = [f"# Grammar recovery: {name}", "",
           f"Model: `{model or 'bundled example'}`; planted CTCF-6N-CEBPB and NFIX-[10-20N]-NFIX. "
           "Produced by `python bench/grammar_recovery.py`.", "",
           "| seed | rule | CTCF-6N-CEBPB | (CEBP family) | NFIX-[a-bN]-NFIX in 8..22 | (NFI family) "
           "| wrong lines | front page names both | decode + analysis |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        v = r["verdict"]
        out.append(f"| {r['seed']} | {r['rule']} | {'yes' if v['ctcf_6n_cebpb'] else 'no'} | "
                   f"{'yes' if v['ctcf_6n_cebp_family'] else 'no'} | {'yes' if v['nfix_soft'] else 'no'} | "
                   f"{'yes' if v['nfi_soft_family'] else 'no'} | {len(v['wrong_lines'])} | "
                   f"{'yes' if v['front_page_names_both'] else 'no'} | "
                   + (decode_time(r["decode"]) if r["decode"] else "- |"))
    for r in results:
        out += ["", f"## seed {r['seed']}: lines pairing CTCF with CEBP or NFI with NFI", "",
                "| layer | neuron | line | inside gaps / containing | share | verdict | "
                "neuron's own peak gap (spacing scan) |", "|---|---|---|---|---|---|---|"]
        for row in r["lines"]:
            ok = all(p["ok"] for p in row["pairs"])
            peaks = ", ".join(
                f"{p['network_peak_gap']} ({'in' if p['peak_in_line'] else 'not in'} the line's "
                f"range +-1; f at the line's gaps {p['response_in_line']:.2f}, at the peak "
                f"{p['response_peak']:.2f}, median over gaps {p['response_median']:.2f})"
                for p in row["pairs"])
            out.append(f"| {row['layer']} | {row['neuron']} | `{row['line']}` | {row['support']} | "
                       f"{row['share']} | {'planted gap' if ok else 'other gap'} | {peaks} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--out-root", default="grammar-recovery")
    p.add_argument("--name", default="example")
    p.add_argument("--reuse", action="store_true")
    p.add_argument("--rule", default=None, choices=("reference", "paper"))
    p.add_argument("--decode-args", default="",
                   help="more `nmjax decode` arguments, e.g. '--neurons 0-31'")
    args = p.parse_args(argv)
    results = []
    for seed in (int(s) for s in args.seeds.split(",")):
        out = Path(args.out_root) / f"{args.name}-seed{seed}"
        results.append(run_seed(args.model, seed, out, args.reuse, args.rule,
                                args.decode_args.split()))
        print(f"seed {seed}: {results[-1]['verdict']}", flush=True)
    suffix = "" if args.name == "example" and not args.rule else f"_{args.name}" + (
        f"_{args.rule}" if args.rule else "")
    write_text(RESULTS / f"grammar_recovery{suffix}.json",
               json.dumps({"model": args.model, "results": results}, indent=1))
    write_text(RESULTS / f"grammar_recovery{suffix}.md", markdown(args.name, args.model, results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
