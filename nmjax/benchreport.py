"""The report of `python -m nmjax.bench`: its markdown tables and the projected time to decode
whole models from the measured throughput."""
from __future__ import annotations

from .benchkit import model

PROJECTED = ("basset", "bd10", "dd10")


def projection(layers: list[dict], decoded: list[dict], default_generations: int,
               enumerate_below: int = 11) -> list[dict]:
    """Hours to decode every neuron of each architecture in `PROJECTED` on this machine.

    Per GA layer: channels x (generations x measured seconds per generation per neuron +
    seconds per neuron beyond the GA). Generations and the seconds beyond the GA come from the
    decoded Basset neurons of the same layer index (Basset L3's for deeper layers): their
    seconds per neuron less their generations at the Basset hot loop's rate, i.e. the fp32
    re-scoring of the kept samples, host work and the decoupling (the decoupling alone where
    the Basset hot loop was not measured); else `default_generations` and 0. So a decoded Basset
    layer projects to channels x its measured seconds per neuron. Layers with receptive field <
    `enumerate_below` are enumerated (4^N windows, no K-means: nothing below them pools):
    channels x 4^N / measured forward+gradient seq/s, an upper bound on the forward-only
    enumeration.
    """
    by_layer = {d["layer"]: d for d in decoded if "error" not in d}
    deepest = by_layer[max(by_layer)] if by_layer else None
    basset_rate = {r["layer"]: r["ga_s_per_generation_per_neuron"] for r in layers
                   if r["model"] == "basset" and r["width"] == 1.0 and "error" not in r}
    out = []
    for name in PROJECTED:
        rows = [r for r in layers if r["model"] == name and r["width"] == 1.0 and "error" not in r]
        if not rows:
            continue
        total, per_layer = 0.0, []
        for r in sorted(rows, key=lambda r: r["layer"]):
            if r["receptive_field"] < enumerate_below:
                seconds = r["channels"] * 4 ** r["receptive_field"] / r["score_seq_per_s"]
                per_layer.append({"layer": r["layer"], "hours": round(seconds / 3600, 3),
                                  "enumerated": True})
            else:
                ref = by_layer.get(r["layer"], deepest)
                gens = ref["generations_mean"] if ref else default_generations
                beyond = _beyond_ga(ref, basset_rate) if ref else 0.0
                seconds = r["channels"] * (gens * r["ga_s_per_generation_per_neuron"] + beyond)
                per_layer.append({"layer": r["layer"], "hours": round(seconds / 3600, 3),
                                  "generations": gens, "beyond_ga_s": round(beyond, 2)})
            total += seconds
        complete = len(rows) == len(model(name, 1.0).config.convs)
        out.append({"model": name, "hours": round(total / 3600, 2), "all_layers": complete,
                    "layers": per_layer})
    return out


def _beyond_ga(decoded: dict, basset_rate: dict[int, float]) -> float:
    """Seconds a decoded Basset neuron spent beyond its GA generations at the hot loop's rate."""
    rate = basset_rate.get(decoded["layer"])
    if rate is None:
        return decoded["kmeans_s_per_neuron"]
    return max(decoded["seconds_per_neuron"] - decoded["generations_mean"] * rate, 0.0)


def markdown(result: dict) -> str:
    """The run's report: the machine, the hot loop per layer, decoded neurons, projections."""
    peak = result["peak"]
    lines = [f"# nmjax bench ({result['mode']})", "",
             f"{result['started']} UTC, {result['machine']}, jax {result['jax']}; "
             f"load average {result['load_start']} at start, {result['load_end']} at end "
             "(the cores are shared: treat times as upper bounds).", "",
             f"Matmul 2048x2048: jax fp32 {peak['jax_fp32']} GFLOP/s, numpy fp32 "
             f"{peak['numpy_fp32']}, jax bf16 (fp32 accumulate) {peak['jax_bf16']} at the "
             "start. The % of peak column names the fp32 peak each row is against: measured "
             "again inside that case (same load) where the row has one, else this figure.", "",
             "## Hot loop per layer (forward + input gradient; one GA generation)", "",
             "| model | width | layer | N bp | P | neurons | precision | MFLOP/seq (model) | "
             "seq/s | GFLOP/s model (executed) | % of fp32 peak (GFLOP/s) | "
             "s/generation/neuron | generations/s | compile s (score, GA) | temp MB | "
             "peak RSS MB | load |",
             "|" + "---|" * 17]
    lines += _layer_rows(result["layers"], peak)
    if result["decoded"]:
        lines += _decoded_rows(result["decoded"])
    if result["projection"]:
        lines += _projection_rows(result["projection"])
    return "\n".join(lines) + "\n"


def _rows(cases: list[dict], key, cells) -> list[str]:
    """Table rows: each case's `key(case)` cells, then `cells(case)` or its error."""
    return [f"| {key(c)} | error: {c['error']} |" if "error" in c else f"| {key(c)} | {cells(c)} |"
            for c in cases]


def _layer_rows(layers: list[dict], peak: dict) -> list[str]:
    def cells(r: dict) -> str:
        return (f"{r['receptive_field']} | "
                f"{r['population']} | {r['neuron_batch']} | {r.get('precision', 'fp32')} | "
                f"{r['model_mflop_per_seq']} | "
                f"{r['score_seq_per_s']:.0f} | {r['score_model_gflops']} "
                f"({r['score_executed_gflops']}) | {100 * r['score_fraction_of_peak']:.0f} of "
                f"{r.get('case_fp32_peak_gflops', peak['fp32_peak'])} | "
                f"{r['ga_s_per_generation_per_neuron']} | {r['ga_generations_per_s']} | "
                f"{r['score_compile_s']}, {r['ga_compile_s']} | {r['ga_temp_mb']} | "
                f"{r['peak_rss_mb']} | {r['load_before']}-{r['load_after']}")

    return _rows(layers, lambda r: f"{r['model']} | {r['width']} | {r['layer']}", cells)


def _decoded_cells(d: dict) -> str:
    return (f"{sum(len(b['neurons']) for b in d['batches'])}"
            f"{' (incl. compile)' if d['includes_compile'] else ''} | "
            f"{d['generations_mean']} | {d['max_samples']} | "
            f"{d['seconds_per_neuron']} "
            f"({d.get('seconds_per_neuron_with_compile', d['seconds_per_neuron'])}) | "
            f"{d['kmeans_s_per_neuron']} | {_samples_range(d)} | {d['peak_rss_mb']} | "
            f">= {d['authors_s_per_neuron_at_least']} | >= {d['speedup_vs_authors_at_least']}x"
            f" | {d['target_speedup']}x | {d.get('sampling_s_per_generation', '')} "
            f"({d.get('authors_s_per_generation_at_least', '')}) | "
            f"{d['load_before']}-{d['load_after']}")


def _samples_range(decoded: dict) -> str:
    """Smallest-largest sample set of a decode case's neurons ('' for older results)."""
    counts = [n for b in decoded["batches"] for n in b.get("samples", [])]
    return f"{min(counts)}-{max(counts)}" if counts else ""


def _decoded_rows(decoded: list[dict]) -> list[str]:
    return ["", "## Decoded neurons, full-size Basset (sampling + decoupling)", "",
            "| layer | neurons | generations | sample cap | s/neuron net of compile (with) | "
            "decoupling s | samples | peak RSS MB | authors s/neuron | speed-up | target | "
            "s/generation (authors) | load |",
            "|" + "---|" * 13] + _rows(decoded, lambda d: d["layer"], _decoded_cells)


def _projection_rows(projected: list[dict]) -> list[str]:
    lines = ["", "## Projected time to decode every neuron on this machine", "",
             "| model | hours | all layers measured | per layer (hours) |",
             "|---|---|---|---|"]
    for p in projected:
        per = ", ".join(f"L{x['layer']} {x['hours']}" + (" (enum.)" if x.get("enumerated")
                                                          else "") for x in p["layers"])
        lines.append(f"| {p['model']} | {p['hours']} | {p['all_layers']} | {per} |")
    return lines
