"""A decode output directory with known content, built from real JASPAR matrices, for the
matching, grammar, diagnose and report tests (the files the decoder writes, nothing else)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from nmjax.config import DEFAULT_SEGMENT_RULE
from nmjax.meme import Motif, write_meme
from nmjax.motifdb import jaspar_motif
from nmjax.motifs import (SEGMENT_RULES, consensus, consensus_string,
                          laplace, segment_ppm)

N_SAMPLES = 2000
SOFT_GAPS = (10, 12, 14, 16, 18, 20)

# layer -> (window length, {neuron: [(subsets: list of [(matrix id, start)]) ...] or None if dead})
PLAN = {
    1: (12, {0: [[("MA0035.5", 3)]], 1: None}),
    2: (64, {
        0: [[("MA0139.2", s)] for s in (5, 9, 13, 17)],                              # CTCF
        1: [[("MA0139.2", s), ("MA0466.4", s + 15 + 6)] for s in (3, 7, 11, 15, 19)],  # CTCF-6N-CEBPB
        2: [[("MA1528.2", 2), ("MA1528.2", 2 + 14 + g)] for g in SOFT_GAPS],       # NFIX-[10-20N]-NFIX
        3: None,                                                                    # dead
        4: [[]],                                                                    # sick: no motif
    }),
}


def planted_ppm(length: int, sites: list[tuple[str, int]], rng: np.random.Generator,
                matrices: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """A near-uniform background PPM with matrices (`matrices` by id, else JASPAR) written at
    the given starts."""
    ppm = rng.dirichlet(np.full(4, 20.0), size=length)
    for matrix_id, start in sites:
        m = (matrices or {}).get(matrix_id)
        m = jaspar_motif(matrix_id).ppm if m is None else m
        ppm[start:start + len(m)] = 0.95 * m + 0.05 * ppm[start:start + len(m)]
    return ppm


def write_fake_decode(out_dir: Path, seed: int = 0, plan: dict = PLAN,
                      matrices: dict[str, np.ndarray] | None = None) -> Path:
    """Write layer{L}/ppms.meme, motifs.meme, neurons.tsv and run.json as the decoder does."""
    rng = np.random.default_rng(seed)
    for layer, (length, neurons) in plan.items():
        ppms, motifs, rows = [], [], ["neuron\tsubset\tn\tact\tconact\tconsensus"]
        for neuron, subsets in neurons.items():
            if subsets is None:
                rows.append(f"{neuron}\t0\t0\tnan\tnan\t")
                continue
            for s, sites in enumerate(subsets):
                raw = planted_ppm(length, sites, rng, matrices)
                ppm = laplace(raw, N_SAMPLES, 80.0)      # as ppms.meme holds them
                name = f"L{layer}_N{neuron}_S{s}"
                ppms.append(Motif(name, ppm, N_SAMPLES))
                for a, b in segment_ppm(raw, N_SAMPLES, SEGMENT_RULES[DEFAULT_SEGMENT_RULE]):
                    motifs.append(Motif(f"{name}_{a}-{b}", ppm[a:b], N_SAMPLES))
                act = 10.0 + s
                conact = 0.2 * act if not sites else 0.9 * act
                rows.append(f"{neuron}\t{s}\t{N_SAMPLES}\t{act:.4f}\t{conact:.4f}\t"
                            f"{consensus_string(consensus(ppm))}")
        layer_dir = out_dir / f"layer{layer}"
        write_meme(layer_dir / "ppms.meme", ppms)
        write_meme(layer_dir / "motifs.meme", motifs)
        (layer_dir / "neurons.tsv").write_text("\n".join(rows) + "\n")
    (out_dir / "run.json").write_text(json.dumps({"seed": seed, "fake": True}))
    return out_dir
