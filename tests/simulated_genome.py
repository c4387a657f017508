"""Sequences of the bundled example's simulated test split, with the sites `nmjax simulate`
planted in them, written as FASTA files for the scan and spacing tests."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from nmjax.example import example_tasks_path
from nmjax.sequences import decode, write_fasta
from nmjax.simulate import load_config, simulate

CTCF = "MA0139.2"


@dataclasses.dataclass(frozen=True)
class SimulatedSequences:
    codes: np.ndarray                          # (n, length) base codes
    sites: dict[str, list[list[tuple[int, int]]]]  # motif -> per sequence [(start, end)]


def simulated_sequences(n: int = 300) -> SimulatedSequences:
    config = dataclasses.replace(load_config(example_tasks_path()), n_test=n)
    batch = simulate(config, "test")
    sites: dict[str, list[list[tuple[int, int]]]] = {}
    for i, events in enumerate(batch.events):
        for e in events:
            for s in e.sites:
                sites.setdefault(s.motif, [[] for _ in range(n)])[i].append((s.start, s.end))
    return SimulatedSequences(batch.onehot.argmax(-1).astype(np.uint8), sites)


def write_records(path: Path, sim: SimulatedSequences, soft_masked: int = 50,
                  n_run: tuple[int, int, int] | None = (5, 100, 110)) -> Path:
    """One FASTA record per sequence (seq0, seq1, ...): the first `soft_masked` in lowercase,
    and in sequence n_run[0] the bases n_run[1]:n_run[2] set to N."""
    texts = {}
    for i, codes in enumerate(sim.codes):
        text = decode(codes)
        if n_run and i == n_run[0]:
            text = text[:n_run[1]] + "N" * (n_run[2] - n_run[1]) + text[n_run[2]:]
        texts[f"seq{i}"] = text.lower() if i < soft_masked else text
    write_fasta(path, texts)
    return path


def write_genome(path: Path, sim: SimulatedSequences, per_chrom: int) -> Path:
    """Sequences laid end to end: chr1 holds the first `per_chrom`, chr2 the next, ..."""
    n = len(sim.codes)
    write_fasta(path, {f"chr{k // per_chrom + 1}": np.concatenate(sim.codes[k:k + per_chrom])
                       for k in range(0, n, per_chrom)})
    return path
