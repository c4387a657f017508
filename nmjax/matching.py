"""Tomtom motif comparison in process, and JASPAR matching of decoded motifs.

Tomtom (Gupta et al., Genome Biology 2007) scores every alignment of a query and a target
motif column by column and turns the best score into a p-value with a background built from
all target columns. `memelite.tomtom` (Schreiber, numba) implements the Euclidean-distance
"complete score" variant and returns p-values, offsets, overlaps and strands; this module adds
what MEME's tomtom adds around them: the 0.1 motif pseudocount on queries and targets,
E = p x number of targets, and Benjamini-Hochberg q-values per query over all targets.

Column distance (`TomtomConfig.distance`):
- "correlation" (default): memelite's Euclidean distance between columns that are first
  centred (minus 0.25) and scaled to unit length, i.e. sqrt(2 - 2 r) with r the Pearson
  correlation of the two columns: a monotone transform of MEME tomtom's default column score
  (Pearson), which the NeuronMotif authors used. Near-uniform columns (centred norm < 0.05) are
  not scaled up, so they sit at distance ~1 from everything instead of matching each other.
- "euclidean": memelite's distance on the probabilities themselves (MEME tomtom -dist ed).
  Measured on JASPAR 2026 CORE vertebrates (1019 targets): 30/30 near-uniform 12-bp queries
  and 17/30 random Dirichlet(1) queries "match" at q < 0.01 (mostly the 31-33 bp CTCF
  matrices), against 0/30 and 0/30 with "correlation"; column-shuffled JASPAR motifs: 2/30
  (euclidean) and 4/30 (correlation); noisy copies of JASPAR motifs: 30/30 with both.

Offsets follow Tomtom: with offset o, query column i is aligned to target column i + o
(for orientation '-', columns of the reverse-complemented target).
"""
from __future__ import annotations

import csv
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from . import runfolder
from .errors import NmjaxError
from .fileio import atomic_path
from .meme import Motif
from .motifdb import DEFAULT_RELEASE, load_motif_db
from .motifs import laplace

MIN_TARGETS = 25   # memelite's (and, at 50, MEME tomtom's) warning threshold
MATCH_COLUMNS = ("query", "target", "target_name", "p_value", "e_value", "q_value",
                 "offset", "orientation", "overlap", "query_length", "target_length")


@dataclass(frozen=True)
class TomtomConfig:
    """Settings of a Tomtom comparison (MEME tomtom's defaults where it has one)."""

    pseudocount: float = 0.1       # MEME tomtom -motif-pseudo, added to queries and targets
    n_score_bins: int = 100        # memelite defaults (Tomtom's score discretisation)
    n_median_bins: int = 1000
    n_target_bins: int | None = 100
    report_max_q: float = 0.5      # MEME tomtom -thresh 0.5 on q-values: pairs kept in output
    distance: str = "correlation"  # or "euclidean"; see the module docstring


@dataclass(frozen=True)
class TomtomResult:
    """All query x target comparisons; every array has shape (n_queries, n_targets)."""

    p_value: np.ndarray
    e_value: np.ndarray
    q_value: np.ndarray
    offset: np.ndarray        # int: query column i <-> target column i + offset
    reverse: np.ndarray       # bool: the reverse complement of the target aligned best
    overlap: np.ndarray       # int: aligned columns


@dataclass(frozen=True)
class Match:
    """One query-target pair of a Tomtom comparison, as a row of matches.tsv."""

    query: str
    target: str
    target_name: str
    p_value: float
    e_value: float
    q_value: float
    offset: int
    orientation: str
    overlap: int
    query_length: int
    target_length: int


def with_pseudocount(motif: Motif, pseudocount: float) -> np.ndarray:
    """MEME's motif pseudocount: (p * nsites + pseudocount / 4) / (nsites + pseudocount)."""
    nsites = max(int(motif.nsites), 1)
    return laplace(np.asarray(motif.ppm, np.float64), nsites, pseudocount)


def tomtom_columns(motif: Motif, params: TomtomConfig) -> np.ndarray:
    """The (4, length) array memelite compares: pseudocounted, transformed for the distance."""
    p = with_pseudocount(motif, params.pseudocount)
    if params.distance == "correlation":
        centred = p - 0.25
        p = centred / np.maximum(np.linalg.norm(centred, axis=1, keepdims=True), 0.05)
    elif params.distance != "euclidean":
        raise NmjaxError(f"unknown Tomtom distance {params.distance!r}; use correlation or euclidean")
    return np.ascontiguousarray(p.T)


_COLUMNS: dict[tuple[int, TomtomConfig], tuple[Motif, np.ndarray]] = {}


def _cached_columns(motif: Motif, params: TomtomConfig) -> np.ndarray:
    """`tomtom_columns` of a motif compared many times (a database's matrices): kept while the
    motif object lives (keyed by identity, checked), at most 20,000 entries."""
    key = (id(motif), params)
    hit = _COLUMNS.get(key)
    if hit is not None and hit[0] is motif:
        return hit[1]
    if len(_COLUMNS) > 20_000:
        _COLUMNS.clear()
    cols = tomtom_columns(motif, params)
    _COLUMNS[key] = (motif, cols)
    return cols


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q-values along the last axis (pi0 = 1, as MEME's tomtom)."""
    p = np.asarray(p, np.float64)
    m = p.shape[-1]
    order = np.argsort(p, axis=-1, kind="stable")
    ranked = np.take_along_axis(p, order, -1) * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[..., ::-1], axis=-1)[..., ::-1]
    q = np.empty_like(ranked)
    np.put_along_axis(q, order, np.minimum(ranked, 1.0), -1)
    return q


def tomtom(queries: Sequence[Motif], targets: Sequence[Motif], reverse_complement: bool = True,
           params: TomtomConfig = TomtomConfig()) -> TomtomResult:
    """Compare every query with every target; E and q count all targets (one strand each)."""
    from memelite import tomtom as memelite_tomtom

    if not queries or not targets:
        raise NmjaxError("Tomtom needs at least one query and one target motif")
    qs = [tomtom_columns(m, params) for m in queries]
    ts = [_cached_columns(m, params) for m in targets]
    with warnings.catch_warnings():
        # memelite warns below 25 targets; callers that compare few motifs pad the targets
        # with a database (grammar) or accept it, so the warning is not repeated per call.
        warnings.simplefilter("ignore", UserWarning)
        p, _score, offset, overlap, strand = memelite_tomtom(
            qs, ts, n_score_bins=params.n_score_bins, n_median_bins=params.n_median_bins,
            n_target_bins=params.n_target_bins, reverse_complement=reverse_complement)
    p = np.clip(p, 0.0, 1.0)
    return TomtomResult(p, p * len(targets), benjamini_hochberg(p), offset.astype(np.int64),
                        strand.astype(bool), overlap.astype(np.int64))


def compare(queries: Sequence[Motif], targets: Sequence[Motif],
            params: TomtomConfig = TomtomConfig()) -> list[Match]:
    """Tomtom of queries against a motif database, pairs with q <= params.report_max_q,
    sorted per query by p-value."""
    res = tomtom(queries, targets, True, params)
    rows = []
    for i, qm in enumerate(queries):
        keep = np.flatnonzero(res.q_value[i] <= params.report_max_q)
        for j in keep[np.argsort(res.p_value[i, keep], kind="stable")]:
            t = targets[j]
            rows.append(Match(qm.name, t.name, t.alt_name, float(res.p_value[i, j]),
                              float(res.e_value[i, j]), float(res.q_value[i, j]),
                              int(res.offset[i, j]), "-" if res.reverse[i, j] else "+",
                              int(res.overlap[i, j]), len(qm.ppm), len(t.ppm)))
    return rows


def write_matches(path: str | os.PathLike, matches: Sequence[Match]) -> None:
    """Write matches as a tab-separated table with a header, atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(MATCH_COLUMNS)
        for m in matches:
            w.writerow([m.query, m.target, m.target_name, f"{m.p_value:.4g}", f"{m.e_value:.4g}",
                        f"{m.q_value:.4g}", m.offset, m.orientation, m.overlap,
                        m.query_length, m.target_length])


def read_matches(path: str | os.PathLike) -> list[Match]:
    """Read a matches.tsv written by `write_matches`."""
    try:
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh, delimiter="\t"))
    except OSError as e:
        raise NmjaxError(f"cannot read {path}: {e.strerror}; run `nmjax match` first") from e
    if not rows or tuple(rows[0]) != MATCH_COLUMNS:
        raise NmjaxError(f"{path}: not a matches table (header should be {' '.join(MATCH_COLUMNS)})")
    out = []
    for k, r in enumerate(rows[1:], start=2):
        try:
            out.append(Match(r[0], r[1], r[2], float(r[3]), float(r[4]), float(r[5]), int(r[6]),
                             r[7], int(r[8]), int(r[9]), int(r[10])))
        except (ValueError, IndexError) as e:
            raise NmjaxError(f"{path}: line {k}: bad row ({e})") from e
    return out


def warn_if_few_targets(db: Sequence[Motif], source) -> None:
    """Tomtom's background is the target columns: say so when a motif file is small."""
    if len(db) < MIN_TARGETS:
        warnings.warn(f"{source} holds only {len(db)} motifs: Tomtom p-values use the target "
                      f"columns as background, so with fewer than {MIN_TARGETS} targets they depend "
                      f"strongly on which targets are given", stacklevel=3)


def match_layer(layer_dir: str | os.PathLike, db: Sequence[Motif],
                params: TomtomConfig = TomtomConfig()) -> list[Match]:
    """Match a layer's segmented motifs (motifs.meme) against `db`; write matches.tsv."""
    layer_dir = Path(layer_dir)
    motifs = runfolder.read_segments(layer_dir)
    matches = compare(motifs, db, params) if motifs else []
    write_matches(layer_dir / "matches.tsv", matches)
    return matches


def match_run(out_dir: str | os.PathLike, motif_db: str | os.PathLike | None = None,
              release: str = DEFAULT_RELEASE, params: TomtomConfig = TomtomConfig()
              ) -> dict[int, list[Match]]:
    """Match every decoded layer of a decode output directory; returns matches per layer."""
    layers = runfolder.decoded_layers(out_dir)
    db = load_motif_db(motif_db, release)
    warn_if_few_targets(db, motif_db)
    return {layer: match_layer(runfolder.layer_dir(out_dir, layer), db, params) for layer in layers}


def describe(params: TomtomConfig, motif_db: str | os.PathLike | None, release: str) -> dict:
    """The comparison settings as recorded in run outputs and the report."""
    return {"method": f"Tomtom complete score (memelite), {params.distance} column distance",
            "database": str(motif_db) if motif_db else f"{release} CORE vertebrates (pyJASPAR)",
            "motif_pseudocount": params.pseudocount, "n_score_bins": params.n_score_bins,
            "n_median_bins": params.n_median_bins, "n_target_bins": params.n_target_bins,
            "strands": "both", "e_value": "p x number of targets",
            "q_value": "Benjamini-Hochberg per query over all targets",
            "pairs_reported": f"q <= {params.report_max_q}"}
