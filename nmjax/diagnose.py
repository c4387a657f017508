"""Model diagnostics from a decode output (paper Fig. 4b,c): alive, dead and sick neurons.

Definitions (per neuron of a layer, over its decoupled subsets in neurons.tsv):
- dead: no subset has a sample (every row n = 0): no sequence reached f > 0.
- act = max act over its subsets; ratio = max conact over its subsets / act.
- sick: alive and (ratio < `sick_ratio` (0.5): even the best consensus sequence reaches less
  than half the neuron's maximum, the signature of a mixture of synonymous motifs that no
  single consensus represents; or act < `weak_fraction` (0.1) x the median act of the layer's
  alive neurons: a neuron that barely fires).
- alive (in the counts): alive and not sick; the three counts add up to the layer's neurons.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import runfolder
from .fileio import write_text
from .results import pooled_ratio
from .runfolder import SubsetRow, decoded_layers, parse_ppm_name, read_neurons, read_segments

@dataclass(frozen=True)
class DiagnoseConfig:
    sick_ratio: float = 0.5
    weak_fraction: float = 0.1


def motif_counts(layer_dir: str | os.PathLike) -> dict[int, int]:
    """Segmented motifs per neuron, from the names L{L}_N{n}_S{s}_{a}-{b} in motifs.meme."""
    counts: dict[int, int] = {}
    for m in read_segments(layer_dir):
        neuron = parse_ppm_name(m.name)[1]
        counts[neuron] = counts.get(neuron, 0) + 1
    return counts


def diagnose_layer(layer_dir: str | os.PathLike, params: DiagnoseConfig = DiagnoseConfig()) -> dict:
    """Per-neuron status and the layer's conact-vs-act scatter points (one per subset)."""
    rows = read_neurons(layer_dir)
    motifs = motif_counts(layer_dir)
    by_neuron: dict[int, list[SubsetRow]] = {}
    for r in rows:
        by_neuron.setdefault(r.neuron, []).append(r)
    alive_act = [max(r.act for r in rs if r.n > 0) for rs in by_neuron.values()
                 if any(r.n > 0 for r in rs)]
    median_act = float(np.median(alive_act)) if alive_act else 0.0
    neurons = []
    for neuron in sorted(by_neuron):
        live = [r for r in by_neuron[neuron] if r.n > 0]
        entry = {"neuron": neuron, "subsets": len(live), "motifs": motifs.get(neuron, 0),
                 "samples": sum(r.n for r in live)}
        if not live:
            neurons.append({**entry, "status": "dead", "act": None, "conact": None, "ratio": None})
            continue
        act, conact = max(r.act for r in live), max(r.conact for r in live)
        ratio = pooled_ratio([r.act for r in live], [r.conact for r in live])
        sick = not ratio >= params.sick_ratio or act < params.weak_fraction * median_act
        neurons.append({**entry, "status": "sick" if sick else "alive", "act": act,
                        "conact": conact, "ratio": ratio})
    counts = {s: sum(n["status"] == s for n in neurons) for s in ("alive", "sick", "dead")}
    return {"neurons": neurons, "counts": counts, "median_act": median_act,
            "scatter": [{"neuron": r.neuron, "subset": r.subset, "act": r.act, "conact": r.conact}
                        for r in rows if r.n > 0],
            "motifs_per_neuron": {"mean": float(np.mean([n["motifs"] for n in neurons]))
                                  if neurons else 0.0,
                                  "max": max((n["motifs"] for n in neurons), default=0)}}


def diagnose_run(out_dir: str | os.PathLike, params: DiagnoseConfig = DiagnoseConfig()) -> dict:
    """Diagnose every decoded layer; write DIR/diagnose.json and return its content."""
    result = {"definitions": {"dead": "every subset has n = 0",
                              "sick": f"alive and (max conact / max act < {params.sick_ratio} or "
                                      f"max act < {params.weak_fraction} x median max act of the "
                                      f"layer's alive neurons)"},
              "layers": {str(layer): diagnose_layer(runfolder.layer_dir(out_dir, layer), params)
                         for layer in decoded_layers(out_dir)}}
    write_text(Path(out_dir) / "diagnose.json", json.dumps(result, indent=1))
    return result


def summary_text(result: dict) -> str:
    """The `nmjax diagnose` table: one line per layer."""
    lines = ["layer  neurons  alive  sick  dead  motifs/neuron  median_act  median_conact/act"]
    for layer, d in result["layers"].items():
        ratios = [n["ratio"] for n in d["neurons"] if n["ratio"] is not None]
        c = d["counts"]
        lines.append(f"{layer:>5}  {len(d['neurons']):>7}  {c['alive']:>5}  {c['sick']:>4}  "
                     f"{c['dead']:>4}  {d['motifs_per_neuron']['mean']:>13.2f}  "
                     f"{d['median_act']:>10.3g}  "
                     f"{(np.nanmedian(ratios) if ratios else float('nan')):>17.3f}")
    lines.append(f"sick = {result['definitions']['sick']}")
    return "\n".join(lines)
