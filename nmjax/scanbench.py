"""Scanning throughput (`python -m nmjax.bench --scan`): full-size Basset, every layer-3 neuron.

Random weights with folded BatchNorm statistics (`nmjax.benchkit.random_network`); a random
sequence of `bases` bases scanned on both strands. Two figures:
- the scanning program alone (one compiled call on a batch of chunks, best of `repeats`);
- the whole pass (`nmjax.scan.stream_candidates`: chunk extraction, the program, the streaming
  top-region candidates on the host), over the whole sequence.
FLOPs per base are those of the shift-and-stitch pass (`nmjax.scanning`): per strand, every
conv at every base, 2 x kernel width x input channels x output channels; the % of peak is
against the fp32 matmul peak measured in the same process just before.
"""
from __future__ import annotations

import time

import jax
import numpy as np

from .benchkit import load_average, matmul_peak, model, peak_rss_mb

LAYER = 3


def scan_flops_per_base(net, layer: int) -> int:
    """Both strands, every conv of blocks 1..layer at every base."""
    return 2 * sum(2 * c.kernel_width * c.in_channels * c.channels
                   for c in net.config.convs[:layer])


def bench_scan(chunk: int, batch: int, bases: int, repeats: int) -> dict:
    from .scan import ScanConfig, stream_candidates
    from .scanning import scan_program, scan_shape
    from .sequences import whole_records

    load_before = load_average()
    peak = matmul_peak(repeats=3)["fp32_peak"]
    net = model("basset", 1.0)
    neurons = tuple(range(net.channels(LAYER)))
    shape = scan_shape(net, [LAYER], [neurons], chunk, batch)
    program = scan_program(net.config, shape)
    codes = np.random.default_rng(0).integers(0, 4, (batch, shape.chunk)).astype(np.uint8)
    t0 = time.perf_counter()
    jax.block_until_ready(program(net.params, codes))
    compile_s = time.perf_counter() - t0
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(program(net.params, codes))
        best = min(best, time.perf_counter() - t0)
    sequences = {"random": np.random.default_rng(1).integers(0, 4, bases).astype(np.uint8)}
    t0 = time.perf_counter()
    stream_candidates(net, sequences, whole_records(sequences), [LAYER], [neurons],
                      ScanConfig(chunk=chunk, batch=batch))
    whole_s = time.perf_counter() - t0
    flops = scan_flops_per_base(net, LAYER)
    program_rate = batch * shape.window / best
    return {"model": "basset", "layer": LAYER, "neurons": len(neurons),
            "receptive_field": net.receptive_field(LAYER), "chunk": shape.chunk,
            "batch": batch, "bases": bases, "mflop_per_base": round(flops / 1e6, 3),
            "compile_s": round(compile_s, 2), "program_bases_per_s": round(program_rate),
            "program_gflops": round(program_rate * flops / 1e9, 1),
            "pass_bases_per_s": round(bases / whole_s), "pass_s": round(whole_s, 2),
            "pass_gflops": round(bases / whole_s * flops / 1e9, 1),
            "case_fp32_peak_gflops": peak,
            "program_fraction_of_peak": round(program_rate * flops / 1e9 / peak, 3),
            "pass_fraction_of_peak": round(bases / whole_s * flops / 1e9 / peak, 3),
            "peak_rss_mb": peak_rss_mb(), "load_before": load_before,
            "load_after": load_average()}


def scan_markdown(result: dict) -> str:
    r = result["scan"]
    if "error" in r:
        return f"# nmjax scan bench\n\nerror: {r['error']}\n"
    return "\n".join([
        "# nmjax scan bench", "",
        f"{result['started']} UTC, {result['machine']}, jax {result['jax']}. Full-size Basset "
        f"(random weights), all {r['neurons']} layer-{r['layer']} neurons ({r['receptive_field']} "
        f"bp), both strands, every base: {r['mflop_per_base']} MFLOP per base "
        "(shift-and-stitch pass, see nmjax/scanning.py). Target: >= 50 % of the fp32 peak.", "",
        "| what | bases/s | GFLOP/s | % of fp32 peak (GFLOP/s) | chunk x batch | compile s | "
        "peak RSS MB | load |", "|---|---|---|---|---|---|---|---|",
        f"| program, one call | {r['program_bases_per_s']} | {r['program_gflops']} | "
        f"{100 * r['program_fraction_of_peak']:.0f} of {r['case_fp32_peak_gflops']} | "
        f"{r['chunk']} x {r['batch']} | {r['compile_s']} | {r['peak_rss_mb']} | "
        f"{r['load_before']}-{r['load_after']} |",
        f"| whole pass, {r['bases']:,} bases | {r['pass_bases_per_s']} | {r['pass_gflops']} | "
        f"{100 * r['pass_fraction_of_peak']:.0f} of {r['case_fp32_peak_gflops']} | "
        f"{r['chunk']} x {r['batch']} | | | |", ""])
