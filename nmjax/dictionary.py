"""The dictionary of hard motifs of one neuron (method-notes §5; paper, "Motif syntax discovery").

A neuron's decoupled PPMs show the same few hard motifs at different positions, on either
strand, cut differently by the segmentation. The dictionary has one entry per hard motif:

Steps 1-3 are `nmjax.clusters`.

1. Segments: every PPM is cut by the run's segmentation rule (`nmjax.motifs.SEGMENT_RULES`);
   two segments at most `max_spacer` bp apart whose union matches one database matrix are one
   segment (a motif with a low-IC spacer, NFI's TTGGC-N5-GCCAA, is not two half-sites).
2. Clusters: Tomtom of the segments against each other, both strands, with the database as
   background columns; greedy, longest first, a representative takes every free segment that
   matches it (q < cluster_q either way) over at least `min_overlap` of the shorter one, so
   overlapping, contained and reverse-complement segments share a cluster. Each member gives a
   placement of the representative's frame in its PPM (`Placement`).
3. Parts: a cluster's context (the weighted mean of its placements, `context_flank` bp each
   side) is matched to the database; a context holding two matrices side by side (a dimer the
   network learned as one block, CTCF-6N-CEBPB) is cut into its matrices (`_split`). Each part,
   or the whole match, or (no database match) the representative itself, is a unit.
4. Entries: units are clustered again by Tomtom (both strands), so one hard motif found in
   several clusters, or named by two paralog matrices, is one entry; entries whose best matrix
   is the same are merged. An entry's PPM is the mean of its sites weighted by each subset's
   n x act; its name is the TF of its best database matrix (q < name_q), the paralog matrices
   with -log10 p at least `tie_log_fraction` (0.9) of its own are kept as ties (shown in the report, never in a grammar
   line), and an entry with no match is named `novel:` + its consensus. An entry seen in fewer
   than `min_subsets` PPMs or in PPMs of less than `min_share` of the neuron's weight, or a
   novel one of less than `min_novel_bits` of information, is noise and dropped.
5. Sites: every occurrence of an entry in a PPM, as the span of the entry's database matrix
   (so gaps count the bp between matrices) or of the entry itself when novel; the strand is
   the matrix's ('.' for a palindromic matrix). A site mostly inside a site of a better
   supported entry is dropped (two names for one stretch of PPM).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .clusters import (DictionaryConfig, Unit, best_match, cluster_units, greedy_clusters,
                       palindromic, segment_clusters, segment_neuron)
from .frames import DecodedPPM, Placement, alignment, frame_columns, weighted_frame
from .matching import TomtomConfig, tomtom
from .meme import Motif
from .motifs import SegmentRule, consensus_string, information_content


@dataclass
class Entry:
    """One hard motif: its frame (`length` columns) and every placement of it in the PPMs."""

    id: str
    length: int
    placements: list[Placement] = field(default_factory=list)
    match: dict | None = None
    site: tuple[int, int, bool] = (0, 0, False)   # matrix frame -> entry frame (shift, rev)
    site_length: int = 0
    palindrome: bool = False
    name: str = ""
    ppm: np.ndarray | None = None


# -- 4. entries -----------------------------------------------------------------------------
def build_entries(units: Sequence[Unit], ppms: dict[int, DecodedPPM], db: Sequence[Motif],
                  params: DictionaryConfig, tparams: TomtomConfig) -> list[Entry]:
    """Hard motifs from units (module docstring, step 4), best supported first."""
    if not units:
        return []
    support = [sum(ppms[p.subset].weight for p in u.places) for u in units]
    order = sorted(range(len(units)), key=lambda i: (-support[i], -(units[i].hi - units[i].lo), i))
    motifs = [Motif(f"U{i}", u.ppm, 1000) for i, u in enumerate(units)]
    groups = []
    for r, members in greedy_clusters(motifs, order, db, params, tparams):
        places = [p.through(shift, rev) for j, shift, rev in members for p in units[j].places]
        groups.append((units[r].hi - units[r].lo, places))
    entries = _name_entries(groups, ppms, db, params, tparams)
    merged: dict[str, Entry] = {}
    for e in entries:   # one entry per database matrix: their sites share its frame
        key = e.match["target"] if e.match else e.id
        if key in merged:
            merged[key].placements.extend(e.placements)
        else:
            merged[key] = e
    kept = list(merged.values())
    for e in kept:
        _keep_fitting(e, ppms, db, params)
    _describe(kept, ppms, db, params, tparams)
    needed = min(params.min_subsets, len(ppms))
    total = sum(d.weight for d in ppms.values()) or 1.0
    weight = {e.id: sum(ppms[s].weight for s in {p.subset for p in e.placements}) for e in kept}
    kept = [e for e in kept if len({p.subset for p in e.placements}) >= needed
            and weight[e.id] >= params.min_share * total
            and (e.match or information_content(e.ppm).sum() >= params.min_novel_bits)]
    kept.sort(key=lambda e: (-weight[e.id], e.name))
    for k, e in enumerate(kept, start=1):
        e.id = f"D{k}"
    return kept


def site_fit(window: np.ndarray, matrix: np.ndarray) -> float:
    """How well a PPM stretch reads as a matrix: the correlation of their centred entries over
    the columns inside the PPM (1: the same, ~0: unrelated), so informative columns count most."""
    ok = ~np.isnan(window[:, 0])
    a, b = window[ok] - 0.25, np.asarray(matrix)[ok] - 0.25
    return float((a * b).sum() / max(np.sqrt((a * a).sum() * (b * b).sum()), 1e-12))


def frame_matrix(e: Entry, ppms: dict[int, DecodedPPM], db: Sequence[Motif]) -> np.ndarray:
    """The matrix an entry's sites are read against: its database matrix, else its mean."""
    if e.match is not None:
        return db[e.match["index"]].ppm
    return weighted_frame(ppms, e.placements, 0, e.site_length)


def _keep_fitting(e: Entry, ppms: dict[int, DecodedPPM], db: Sequence[Motif],
                  params: DictionaryConfig) -> None:
    """Drop an entry's repeated placements and those whose PPM stretch does not read as its
    matrix (site_fit below `site_fit`): a segment clustered by a partial overlap can place a
    motif over its neighbour (CTCF over the CEBP beside it)."""
    matrix = frame_matrix(e, ppms, db)
    e.placements = [p for p in dict.fromkeys(e.placements) if site_fit(
        frame_columns(ppms[p.subset].ppm, p, 0, e.site_length), matrix) >= params.site_fit]


def _name_entries(groups: list[tuple[int, list[Placement]]], ppms: dict[int, DecodedPPM],
                  db: Sequence[Motif], params: DictionaryConfig, tparams: TomtomConfig
                  ) -> list[Entry]:
    """Entries of unit groups, each placed in the frame of its best database matrix (or its
    own frame when novel)."""
    m = params.name_margin
    aggregates = [Motif(f"E{i}", weighted_frame(ppms, places, -m, length + m), 1000)
                  for i, (length, places) in enumerate(groups)]
    res = tomtom(aggregates, db, True, tparams) if db else None
    out = []
    for i, (length, places) in enumerate(groups):
        match = best_match(res, i, db, params) if res is not None else None
        if match is None:
            out.append(Entry(f"E{i}", length, list(places), site_length=length))
            continue
        target = db[match["index"]]
        shift, rev = alignment(res, i, match["index"], len(target.ppm))
        out.append(Entry(f"E{i}", len(target.ppm), [p.through(shift - m, rev) for p in places],
                         match, site_length=len(target.ppm),
                         palindrome=palindromic(target.ppm, params)))
    return out


def _describe(entries: list[Entry], ppms: dict[int, DecodedPPM], db: Sequence[Motif],
              params: DictionaryConfig, tparams: TomtomConfig) -> None:
    """Each entry's PPM (the weighted mean of its sites, in its matrix's frame), and that
    matrix's p-value and paralog ties on this PPM."""
    for e in entries:
        e.ppm = weighted_frame(ppms, e.placements, 0, e.site_length)
    if db and entries:
        res = tomtom([Motif(e.id, e.ppm, 1000) for e in entries], db, True, tparams)
        for i, e in enumerate(entries):
            if e.match is not None:
                e.match = best_match(res, i, db, params, e.match["index"]) or e.match
    for e in entries:
        e.name = e.match["target_name"] if e.match else novel_name(e.ppm)


def novel_name(ppm: np.ndarray) -> str:
    """`novel:` + the consensus of the informative columns (IC >= 0.5 bit; N inside)."""
    ic = information_content(ppm)
    keep = np.flatnonzero(ic >= 0.5)
    if len(keep) == 0:
        return "novel:N"
    core = ppm[keep[0]:keep[-1] + 1]
    text = consensus_string(np.argmax(core, 1))
    return "novel:" + "".join(b if i >= 0.5 else "N"
                              for b, i in zip(text, ic[keep[0]:keep[-1] + 1]))


# -- 5. sites -------------------------------------------------------------------------------
def neuron_sites(entries: Sequence[Entry], ppms: dict[int, DecodedPPM], db: Sequence[Motif]
                 ) -> dict[int, list[dict]]:
    """Per subset, its sites in PPM order: motif id, name, start, end, strand, fit. A site more
    than half inside a better fitting kept site is dropped (two names for one stretch)."""
    found: dict[int, list[dict]] = {}
    for e in entries:
        matrix = frame_matrix(e, ppms, db)
        for p in e.placements:
            start, end = p.span(0, e.site_length)
            strand = "." if e.palindrome else "-" if p.reverse else "+"
            fit = site_fit(frame_columns(ppms[p.subset].ppm, p, 0, e.site_length), matrix)
            found.setdefault(p.subset, []).append({"motif": e.id, "name": e.name, "start": start,
                                                   "end": end, "strand": strand,
                                                   "fit": round(fit, 3)})
    sites = {}
    for subset, cands in sorted(found.items()):
        kept: list[dict] = []
        for c in sorted(cands, key=lambda c: (-c["fit"], c["start"], c["motif"])):
            if not any(2 * (min(k["end"], c["end"]) - max(k["start"], c["start"]))
                       > min(k["end"] - k["start"], c["end"] - c["start"]) for k in kept):
                kept.append(c)
        sites[subset] = sorted(kept, key=lambda c: (c["start"], c["end"], c["motif"]))
    return sites


def neuron_dictionary(ppms: Sequence[DecodedPPM], rule: SegmentRule, db: Sequence[Motif],
                      params: DictionaryConfig = DictionaryConfig(),
                      tparams: TomtomConfig = TomtomConfig()
                      ) -> tuple[list[Entry], dict[int, list[dict]], dict]:
    """The dictionary of a neuron's decoupled PPMs, the sites of every PPM, and counts."""
    by_subset = {d.subset: d for d in ppms}
    segments = segment_neuron(ppms, rule, db, params, tparams)
    stats = {"segments": len(segments), "clusters": 0, "units": 0}
    if not segments:
        return [], {}, stats
    units, left = [], segments
    for _ in range(2):   # a segment its cluster's units do not cover is clustered once more
        clusters = segment_clusters(left, db, params, tparams)
        found, left = cluster_units(clusters, by_subset, db, params, tparams)
        units += found
        stats["clusters"] += len(clusters)
        if not left:
            break
    entries = build_entries(units, by_subset, db, params, tparams)
    stats["units"] = len(units)
    return entries, neuron_sites(entries, by_subset, db), stats
