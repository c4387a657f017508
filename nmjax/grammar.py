"""Grammar of a neuron (method-notes §5): motif dictionary, motif sites and syntax tree.

Per neuron:
1. Segment every decoupled PPM: Laplace-smoothed (the subset's n), IC per position,
   3-position running mean above a threshold, widened by 1 bp (see GrammarParams). Two
   segments at most 5 bp apart whose union matches one database motif are joined (`_join_spaced`).
2. Dictionary: Tomtom (forward strand) of the neuron's segments against themselves; greedy
   clustering, longest segment first: a representative takes every unassigned segment that
   matches it at q < 0.01. Few segments make a poor Tomtom background, so the motif database is
   appended to the targets as background columns (and counted in E and q).
3. Sites: each segment is located as the dictionary motif it matches best (q < 1e-3, overlap
   >= 50 % of the shorter of the two), at PPM position segment start - offset. A dictionary
   motif found in fewer than 2 PPMs (all PPMs if the neuron has only one) is dropped with its
   sites: noise segments of a single PPM (the reference drops dictionary motifs that match at
   most one segment).
4. Dictionary motifs are named by their best database match (both strands, q < 0.01), else by
   their id (D1, D2, ...). A named motif's site is the database matrix's span in the PPM, so
   gaps count the bp between the matrices (a planted JASPAR dimer gives its exact gap); an
   unnamed motif's site is the representative's span.
   Paralog ties: a match is named by every TF whose p-value is within `tie_factor` (2) of the
   best p (q < name_q too), at most `max_names` (3) of them (lowest p first), written in
   alphabetical order joined by '/' (CEBPB/CEBPE): near-identical paralog matrices give
   p-values that close on one decoded motif (on the bundled example's CEBP motifs CEBPB's p is
   1.1-2.3x CEBPE's, NFIC's 1.1-2x NFIX's), and which one is lowest says little about which TF
   the network learned. The single best matrix and TF stay recorded (`target`, `target_name`).
5. Composite motifs: a dictionary motif whose span holds two or more database matrices side by
   side (a dimer the network learned as one high-IC segment) is split. Its context is the mean
   of the PPM columns at all its located sites, with `composite_flank` (10) bp each side: one
   PPM's segment often cuts a matrix's weaker tail short (layer-5 neuron 24 of the example:
   the reverse-complement CTCF after CEBPB runs 9 bp past the segment). The context is cut at
   every position c inside the motif and both sides are matched on their own; the cut whose
   weaker side has the lowest p is kept when both sides match (q < name_q), each side's matrix
   has at least `min_part` (6) columns on its side of the motif itself (not only in the
   flank), the two matrices share at most `max_part_overlap` (30 %) of the shorter one, and
   they do not both lie mostly inside the one matrix that matches the whole context (a long
   single motif such as CTCF is not cut into halves). Sides are split again the same way.
   Each part gives its own site (its matrix's span, ids D1.1, D1.2, ...), so the gaps of a
   composite are counted between the database matrices. A site more than half inside an
   earlier site of the same name in the same PPM is dropped (one matrix, two dictionary
   motifs).
6. Each PPM gives an ordered list of sites; gaps are the bp between consecutive sites. Orders
   shared across PPMs form a prefix tree (the syntax tree); the neuron's one-line grammar is
   its most common order, with a fixed gap written `6N` and a varying gap `[10-20N]`.
   The text is written in a canonical orientation: the order as read on the PPM or its
   reverse complement (motifs reversed, strands swapped, gaps reversed), whichever has more
   '+' than '-' strands (ties: the alphabetically smaller text), so a dimer reads the same
   whichever strand a neuron learned it on. Strands are those of the matched database
   matrices ('.' for an unnamed motif or a palindromic matrix: mean total-variation distance
   between its columns and its reverse complement's < 0.15, e.g. CEBPB, CEBPE, NFIC
   MA1527.2); each order in grammar.json
   records its text, the strands of its text and whether the text is reverse-complemented.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from .diagnose import parse_ppm_name, read_neurons
from .fileio import write_text
from .matching import TomtomParams, decoded_layers, read_layer_motifs, tomtom
from .meme import Motif
from .motifdb import DEFAULT_RELEASE, load_motif_db
from .motifs import information_content, laplace


@dataclass(frozen=True)
class GrammarParams:
    """Defaults follow the authors' reference implementation (build_dict/segment): IC
    measured as 2 - entropy in nats with threshold 1, which is 2 - 1/ln 2 = 0.557 bits, and
    regions widened by 1 bp; the paper's literal rule is ic_threshold = 1.0 (bits), which splits
    JASPAR-like motifs such as CTCF into pieces shorter than min_segment. The reference smooths
    raw PPMs with M = 30 first; the decoder's ppms.meme are already Laplace-smoothed (M = 80),
    so by default no further smoothing is applied (set laplace_pseudo for raw PPMs).
    tie_factor/max_names (paralog ties), min_part/max_part_overlap/composite_flank (composite
    motifs) and palindrome_distance (strand '.') are this module's own choices, explained in
    the module docstring."""

    laplace_pseudo: float = 0.0
    ic_threshold: float = 2.0 - 1.0 / np.log(2.0)   # bits
    smooth_window: int = 3
    flank: int = 1
    min_segment: int = 4
    max_spacer: int = 5
    cluster_q: float = 0.01
    locate_q: float = 1e-3
    min_overlap: float = 0.5
    min_sites: int = 2
    name_q: float = 0.01
    tie_factor: float = 2.0
    max_names: int = 3
    min_part: int = 6
    max_part_overlap: float = 0.3
    composite_flank: int = 10
    palindrome_distance: float = 0.15


@dataclass(frozen=True)
class Segment:
    """A motif region [start, end) of one decoupled PPM (subset) of a neuron."""

    subset: int
    start: int
    end: int
    motif: Motif


def segment_regions(ppm: np.ndarray, n: int, params: GrammarParams = GrammarParams()
                    ) -> list[tuple[int, int]]:
    """Half-open runs where the 3-position running mean of the smoothed PPM's IC exceeds the
    threshold, each widened by `flank` bp both sides, at least `min_segment` bp long."""
    ic = information_content(laplace(ppm, n, params.laplace_pseudo))
    w = params.smooth_window
    smooth = np.convolve(ic, np.ones(w) / w, mode="same")
    core = smooth > params.ic_threshold
    on = core.copy()
    for d in range(1, params.flank + 1):
        on[d:] |= core[:-d]
        on[:-d] |= core[d:]
    on = np.concatenate([[False], on, [False]])
    edges = np.flatnonzero(on[1:] != on[:-1])
    return [(int(s), int(e)) for s, e in zip(edges[::2], edges[1::2]) if e - s >= params.min_segment]


def segment_ppms(ppms: Sequence[Motif], sizes: dict[int, int], db: Sequence[Motif],
                 params: GrammarParams, tparams: TomtomParams) -> list[Segment]:
    """Segments of every PPM of one neuron (`sizes` maps subset -> n), with spaced motifs
    rejoined (see `_join_spaced`; one Tomtom call for the candidate unions of all PPMs)."""
    per_ppm = []
    for m in ppms:
        _, neuron, subset = parse_ppm_name(m.name)
        n = max(sizes.get(subset, int(m.nsites)), 1)
        parts = [Segment(subset, s, e, Motif(f"N{neuron}_S{subset}_{s}-{e}", m.ppm[s:e], n))
                 for s, e in segment_regions(m.ppm, n, params)]
        pairs = [i for i in range(len(parts) - 1)
                 if parts[i + 1].start - parts[i].end <= params.max_spacer] if db else []
        unions = [Motif(f"N{neuron}_S{subset}_{parts[i].start}-{parts[i + 1].end}",
                        m.ppm[parts[i].start:parts[i + 1].end], n) for i in pairs]
        per_ppm.append((parts, pairs, unions))
    all_unions = [u for _, _, unions in per_ppm for u in unions]
    res = tomtom(all_unions, db, reverse_complement=True, params=tparams) if all_unions else None
    out, row = [], 0
    for parts, pairs, unions in per_ppm:
        out += _join_spaced(parts, pairs, unions, res, row, db, params)
        row += len(pairs)
    return out


def _join_spaced(parts: list[Segment], pairs: list[int], unions: list[Motif], res, row: int,
                 db: Sequence[Motif], params: GrammarParams) -> list[Segment]:
    """Replace two consecutive segments at most `max_spacer` bp apart (`pairs`, their
    `unions` compared with the database in rows row, row + 1, ... of `res`) by their union
    when the union's best database match (q < name_q) covers at least half of each: a motif
    with a low-IC spacer (NFI: TTGGC-N5-GCCAA) is one motif, not two half-sites."""
    joined: dict[int, Segment] = {}
    for k, i in enumerate(pairs, start=row):
        t = int(np.argmin(res.p_value[k]))
        a, b = parts[i], parts[i + 1]
        lo = max(0, -int(res.offset[k, t]))
        hi = min(b.end - a.start, len(db[t].ppm) - int(res.offset[k, t]))
        cover_a = min(hi, a.end - a.start) - lo
        cover_b = hi - max(lo, b.start - a.start)
        if (res.q_value[k, t] < params.name_q and cover_a >= (a.end - a.start) / 2
                and cover_b >= (b.end - b.start) / 2 and i - 1 not in joined):
            joined[i] = Segment(a.subset, a.start, b.end, unions[k - row])
    out, skip = [], False
    for i, seg in enumerate(parts):
        if skip:
            skip = False
            continue
        out.append(joined.get(i, seg))
        skip = i in joined
    return out


def build_dictionary(segments: Sequence[Segment], q_fwd: np.ndarray, params: GrammarParams
                     ) -> tuple[list[int], np.ndarray]:
    """Greedy clustering; returns representative segment indices and each segment's cluster."""
    ic = [information_content(s.motif.ppm).sum() for s in segments]
    order = sorted(range(len(segments)), key=lambda i: (-(segments[i].end - segments[i].start),
                                                         -ic[i], i))
    cluster = np.full(len(segments), -1)
    reps: list[int] = []
    for i in order:
        if cluster[i] >= 0:
            continue
        cluster[i] = len(reps)
        free = (cluster < 0) & (q_fwd[:, i] < params.cluster_q)
        cluster[free] = len(reps)
        reps.append(i)
    return reps, cluster


def tied_names(candidates: Sequence[tuple[float, str]], params: GrammarParams) -> list[str]:
    """TF names of the (p-value, name) candidates whose p is within tie_factor of the best,
    distinct (case-insensitive), at most max_names (lowest p first), in alphabetical order."""
    ranked = sorted(candidates)
    chosen: dict[str, str] = {}
    for p, name in ranked:
        if p > params.tie_factor * ranked[0][0] or len(chosen) == params.max_names:
            break
        chosen.setdefault(name.upper(), name)
    return sorted(chosen.values(), key=lambda n: (n.upper(), n))


def palindromic(ppm: np.ndarray, params: GrammarParams) -> bool:
    """A matrix that reads the same on both strands (mean total-variation distance between its
    columns and its reverse complement's below palindrome_distance), e.g. CEBPB's ATTGCGCAAT."""
    ppm = np.asarray(ppm)
    return float(0.5 * np.abs(ppm - ppm[::-1, ::-1]).sum(1).mean()) < params.palindrome_distance


def _name_match(named, j: int, length: int, db: Sequence[Motif], params: GrammarParams
                ) -> dict | None:
    """Best database match of query j (q < name_q), named by its tied TFs (`tied_names`), and
    the matrix of the best TF that best coincides with it (fewest unaligned columns on either
    side), which gives the motif's site span."""
    best = int(np.argmin(named.p_value[j]))
    if not named.q_value[j, best] < params.name_q:
        return None
    significant = np.flatnonzero(named.q_value[j] < params.name_q)
    tf = db[best].alt_name or db[best].name
    names = tied_names([(float(named.p_value[j, t]), db[t].alt_name or db[t].name)
                        for t in significant], params)
    same = [t for t in significant if (db[t].alt_name or db[t].name) == tf]
    site = min(same, key=lambda t: (len(db[t].ppm) + length - 2 * named.overlap[j, t],
                                    named.p_value[j, t], t))
    orientation = "-" if named.reverse[j, site] else "+"
    return {"target": db[best].name, "target_name": tf, "name": "/".join(names), "names": names,
            "p_value": float(named.p_value[j, best]), "q_value": float(named.q_value[j, best]),
            "orientation": "-" if named.reverse[j, best] else "+",
            "strand": "." if palindromic(db[site].ppm, params) else orientation,
            "site_target": db[site].name, "site_offset": int(named.offset[j, site]),
            "site_length": len(db[site].ppm)}


def _span(start: int, match: dict) -> tuple[int, int]:
    """Span of a match's site matrix for a query whose first column is at `start`
    (query column i <-> matrix column i + offset)."""
    return start - match["site_offset"], start - match["site_offset"] + match["site_length"]


@dataclass(frozen=True)
class _Piece:
    """A window [start, end) of a representative's context (see `composite_parts`) holding its
    core columns [core_lo, core_hi), with the span of its best database matrix (None: no
    match at q < name_q)."""

    rep: int
    start: int
    end: int
    core_lo: int
    core_hi: int
    span: tuple[int, int] | None
    match: dict | None


def _covered(span: tuple[int, int], by: tuple[int, int] | None) -> bool:
    """Whether more than half of `span` lies inside `by`."""
    return by is not None and 2 * (min(span[1], by[1]) - max(span[0], by[0])) > span[1] - span[0]


def _best_cut(piece: _Piece, cuts: list[tuple[int, dict | None, dict | None]],
              params: GrammarParams) -> tuple | None:
    """The cut of a piece (module docstring, step 5) whose weaker side has the lowest p, among
    cuts whose sides both match with min_part columns of their matrix on their side's part of
    the representative, barely overlap and are not both mostly inside the matrix that matches
    the whole piece."""
    best = None
    for c, left, right in cuts:
        if left is None or right is None:
            continue
        (ls, le), (rs, re_) = _span(piece.start, left), _span(c, right)
        shared = min(le, re_) - max(ls, rs)
        if (ls >= rs or shared > params.max_part_overlap * min(le - ls, re_ - rs)
                or min(le, c) - max(ls, piece.core_lo) < params.min_part
                or min(re_, piece.core_hi) - max(rs, c) < params.min_part
                or (_covered((ls, le), piece.span) and _covered((rs, re_), piece.span))):
            continue
        key = (max(left["p_value"], right["p_value"]), left["p_value"] * right["p_value"], c)
        if best is None or key < best[0]:
            best = (key, c, left, right)
    return best


def composite_parts(contexts: Sequence[tuple[Motif, int, int]], db: Sequence[Motif],
                    params: GrammarParams, tparams: TomtomParams) -> list[list[dict]]:
    """Per representative, its database matrices side by side (module docstring, step 5): a
    list of matches with their `start`/`end` span in the representative, or [] if it is not a
    composite. A context is (a PPM holding the representative with up to composite_flank bp
    on each side, first and end column of the representative in it). Cuts lie inside the
    representative, so each side holds at least min_part of its columns. One Tomtom call per
    round of cuts for all representatives."""
    leaves: list[list[_Piece]] = [[] for _ in contexts]
    pieces = [_Piece(k, 0, len(m.ppm), lo, hi, None, None) for k, (m, lo, hi) in enumerate(contexts)
              if hi - lo >= 2 * params.min_part]
    depth = 0
    while pieces:
        windows, layout = [], []
        for piece in pieces:
            motif = contexts[piece.rep][0]
            whole = len(windows) if depth == 0 else None
            if depth == 0:
                windows.append(Motif("whole", motif.ppm, motif.nsites))
            cuts = range(piece.core_lo + params.min_part, piece.core_hi - params.min_part + 1)
            layout.append((whole, [(c, len(windows) + 2 * i) for i, c in enumerate(cuts)]))
            for c in cuts:
                windows += [Motif(f"{piece.start}-{c}", motif.ppm[piece.start:c], motif.nsites),
                            Motif(f"{c}-{piece.end}", motif.ppm[c:piece.end], motif.nsites)]
        res = tomtom(windows, db, reverse_complement=True, params=tparams) if windows else None
        split = []
        for piece, (whole, cuts) in zip(pieces, layout):
            if whole is not None:
                match = _name_match(res, whole, piece.end - piece.start, db, params)
                piece = replace(piece, match=match, span=_span(0, match) if match else None)
            best = _best_cut(piece, [(c, _name_match(res, w, c - piece.start, db, params),
                                      _name_match(res, w + 1, piece.end - c, db, params))
                                     for c, w in cuts], params)
            if best is None:
                if depth > 0:
                    leaves[piece.rep].append(piece)
                continue
            _, c, left, right = best
            split += [_Piece(piece.rep, piece.start, c, piece.core_lo, c,
                             _span(piece.start, left), left),
                      _Piece(piece.rep, c, piece.end, c, piece.core_hi, _span(c, right), right)]
        pieces, depth = split, depth + 1
    out = []
    for (_, lo, _), parts in zip(contexts, leaves):
        spans = sorted(((_span(p.start - lo, p.match), p.match) for p in parts), key=lambda x: x[0])
        out.append([{**m, "start": s, "end": e} for (s, e), m in spans])
    return out


def _site_spans(rep_start: int, entry: dict) -> list[tuple[str, int, int, str, str]]:
    """(site id, start, end, strand, name) of a dictionary motif placed at rep_start: one per
    part of a composite, else its coinciding database matrix if named, else the representative."""
    if entry["parts"]:
        return [(f"{entry['id']}.{k + 1}", rep_start + p["start"], rep_start + p["end"],
                 p["strand"], p["name"]) for k, p in enumerate(entry["parts"])]
    if entry["match"]:
        start, end = _span(rep_start, entry["match"])
        return [(entry["id"], start, end, entry["match"]["strand"], entry["match"]["name"])]
    return [(entry["id"], rep_start, rep_start + entry["length"], ".", entry["id"])]


def _aligned_context(rep: Segment, placements: list[tuple[np.ndarray, int]],
                     params: GrammarParams) -> tuple[Motif, int, int]:
    """Mean of the PPM columns at every located site of a dictionary motif (its first column
    at `start` of each PPM), over the motif and composite_flank bp each side: one PPM can cut a
    weak matrix tail short, the mean over all sites shows it (a column no PPM reaches is
    uniform). Returns (context, first and end column of the motif in it)."""
    flank, length = params.composite_flank, rep.end - rep.start
    total = np.zeros((length + 2 * flank, 4))
    count = np.zeros(length + 2 * flank)
    for ppm, start in placements:
        lo, hi = max(0, start - flank), min(len(ppm), start + length + flank)
        if hi > lo:
            total[lo - start + flank:hi - start + flank] += ppm[lo:hi]
            count[lo - start + flank:hi - start + flank] += 1
    mean = np.where(count[:, None] > 0, total / np.maximum(count, 1)[:, None], 0.25)
    return Motif(rep.motif.name, mean, rep.motif.nsites), flank, flank + length


def neuron_grammar(ppms: Sequence[Motif], sizes: dict[int, int], db: Sequence[Motif],
                   params: GrammarParams, tparams: TomtomParams) -> dict:
    """Dictionary, sites per PPM, gap distributions and syntax tree of one neuron."""
    segments = segment_ppms(ppms, sizes, db, params, tparams)
    empty = {"dictionary": [], "sites": {}, "orders": [], "tree": [], "text": "",
             "segments": len(segments), "unlocated_segments": len(segments), "pruned_motifs": 0}
    if not segments:
        return empty
    res = tomtom([s.motif for s in segments], [s.motif for s in segments] + list(db),
                 reverse_complement=False, params=tparams)
    reps, cluster = build_dictionary(segments, res.q_value[:, :len(segments)], params)
    located = _locate(segments, reps, res, params)
    # a dictionary motif must be found in min_sites PPMs (all of them if there are fewer)
    support = Counter(j for pairs in located.values() for j in {j for j, _ in pairs})
    needed = min(params.min_sites, len(ppms))
    kept = [j for j in range(len(reps)) if support[j] >= needed]
    if not kept:
        return {**empty, "pruned_motifs": len(reps)}
    ids = {j: f"D{k + 1}" for k, j in enumerate(kept)}
    dictionary = [{"id": ids[j], "segment": segments[reps[j]].motif.name,
                   "members": [s.motif.name for s, c in zip(segments, cluster) if c == j],
                   "length": segments[reps[j]].end - segments[reps[j]].start,
                   "ppm": np.round(segments[reps[j]].motif.ppm, 4).tolist(), "match": None,
                   "parts": []} for j in kept]
    if db:
        rep_motifs = [segments[reps[j]].motif for j in kept]
        named = tomtom(rep_motifs, db, reverse_complement=True, params=tparams)
        for k, entry in enumerate(dictionary):
            entry["match"] = _name_match(named, k, entry["length"], db, params)
        by_subset = {parse_ppm_name(m.name)[2]: m.ppm for m in ppms}
        contexts = [_aligned_context(segments[reps[j]], [(by_subset[subset], start)
                                     for subset, pairs in located.items()
                                     for i, start in pairs if i == j], params)
                    for j in kept]
        for entry, parts in zip(dictionary, composite_parts(contexts, db, params, tparams)):
            entry["parts"] = parts
    by_id = {d["id"]: d for d in dictionary}
    sites: dict[int, list[dict]] = {}
    names: dict[str, str] = {}
    strands: dict[str, str] = {}
    for subset, pairs in sorted(located.items()):
        for j, rep_start in pairs:
            if j not in ids:
                continue
            for site_id, start, end, strand, name in _site_spans(rep_start, by_id[ids[j]]):
                names[site_id], strands[site_id] = name, strand
                site = {"motif": site_id, "start": start, "end": end, "strand": strand}
                if site not in sites.setdefault(subset, []):
                    sites[subset].append(site)
        if subset in sites:
            sites[subset] = _drop_repeats(sorted(sites[subset], key=lambda x: (
                x["start"], x["end"], x["motif"])), names)
    orders = _orders(sites, sizes, names, strands)
    located_segments = sum(len(p) for p in located.values())
    return {"dictionary": dictionary, "names": dict(sorted(names.items())),
            "sites": {str(s): v for s, v in sorted(sites.items())},
            "orders": orders, "tree": _tree(sites, names),
            "text": orders[0]["text"] if orders else "", "segments": len(segments),
            "unlocated_segments": len(segments) - located_segments,
            "pruned_motifs": len(reps) - len(kept)}


def _drop_repeats(sites: list[dict], names: dict[str, str]) -> list[dict]:
    """Drop a site that lies more than half inside an earlier site of the same name: two
    dictionary motifs (or composite parts) covering one matrix of a PPM are one site."""
    kept: list[dict] = []
    for site in sites:
        if not any(names[k["motif"]] == names[site["motif"]] and 2 * (min(k["end"], site["end"])
                   - max(k["start"], site["start"])) > site["end"] - site["start"] for k in kept):
            kept.append(site)
    return kept


def _locate(segments: Sequence[Segment], reps: list[int], res, params: GrammarParams
            ) -> dict[int, list[tuple[int, int]]]:
    """Per subset, (dictionary index, PPM position of the motif's first column) of every
    segment that matches a dictionary motif (best p among q < locate_q, overlap >= 50 %)."""
    out: dict[int, list[tuple[int, int]]] = {}
    for si, seg in enumerate(segments):
        length = seg.end - seg.start
        cand = [(res.p_value[si, r], j) for j, r in enumerate(reps)
                if res.q_value[si, r] < params.locate_q and res.overlap[si, r]
                >= params.min_overlap * min(length, segments[r].end - segments[r].start)]
        if cand:
            j = min(cand)[1]
            out.setdefault(seg.subset, []).append((j, seg.start - int(res.offset[si, reps[j]])))
    return out


def _gaps(sites: list[dict]) -> list[int]:
    return [b["start"] - a["end"] for a, b in zip(sites, sites[1:])]


def _orders(sites: dict[int, list[dict]], sizes: dict[int, int], names: dict[str, str],
            strands: dict[str, str]) -> list[dict]:
    """Distinct motif orders with the PPMs showing them, their gaps and their canonical text,
    most common first."""
    groups: dict[tuple, list[int]] = {}
    for subset, s in sites.items():
        groups.setdefault(tuple(x["motif"] for x in s), []).append(subset)
    out = []
    for order, subsets in groups.items():
        gaps = [_gaps(sites[s]) for s in subsets]
        gap_stats = [{"min": min(g), "max": max(g), "values": dict(sorted(Counter(g).items()))}
                     for g in zip(*gaps)]
        text, text_strands, flipped = canonical_text([names[m] for m in order],
                                                     [strands[m] for m in order],
                                                     [_gap_text(g) for g in gap_stats])
        out.append({"motifs": list(order), "subsets": sorted(subsets),
                    "samples": int(sum(sizes.get(s, 0) for s in subsets)), "gaps": gap_stats,
                    "text": text, "strands": text_strands, "reverse_complement": flipped})
    out.sort(key=lambda o: (-len(o["subsets"]), -o["samples"], o["motifs"]))
    return out


def _gap_text(gap: dict) -> str:
    return f"{gap['min']}N" if gap["min"] == gap["max"] else f"[{gap['min']}-{gap['max']}N]"


def canonical_text(names: Sequence[str], strands: Sequence[str], gaps: Sequence[str]
                   ) -> tuple[str, list[str], bool]:
    """One-line grammar `A-6N-B` of motifs read on the PPM, or of their reverse complement
    (order and gaps reversed, strands swapped) when that has more '+' than '-' strands (ties:
    the alphabetically smaller text). Returns the text, its strands and whether it is the
    reverse complement."""
    def text(ns: Sequence[str], gs: Sequence[str]) -> str:
        return "-".join([ns[0]] + [x for g, n in zip(gs, ns[1:]) for x in (g, n)])

    swap = {"+": "-", "-": "+", ".": "."}
    flipped = [swap[s] for s in reversed(strands)]
    readings = [(strands.count("-") - strands.count("+"), text(names, gaps), False, list(strands)),
                (flipped.count("-") - flipped.count("+"), text(names[::-1], gaps[::-1]), True,
                 flipped)]
    _, best, is_flipped, best_strands = min(readings, key=lambda r: r[:3])
    return best, best_strands, is_flipped


def _tree(sites: dict[int, list[dict]], names: dict[str, str]) -> list[dict]:
    """Prefix tree of motif orders; each node has its gap distribution from its parent."""
    root: dict = {"children": {}}
    for subset in sorted(sites):
        node, prev = root, None
        for site in sites[subset]:
            child = node["children"].setdefault(site["motif"], {
                "motif": site["motif"], "name": names[site["motif"]], "subsets": [],
                "gaps": Counter(), "children": {}})
            child["subsets"].append(subset)
            if prev is not None:
                child["gaps"][site["start"] - prev["end"]] += 1
            node, prev = child, site

    def finish(node: dict) -> list[dict]:
        return [{"motif": c["motif"], "name": c["name"], "subsets": c["subsets"],
                 "gaps": {str(g): n for g, n in sorted(c["gaps"].items())},
                 "children": finish(c)} for c in node["children"].values()]

    return finish(root)


def grammar_layer(layer_dir: str | os.PathLike, db: Sequence[Motif],
                  params: GrammarParams = GrammarParams(),
                  tparams: TomtomParams = TomtomParams()) -> dict:
    """Grammar of every neuron of a layer; writes grammar.json and grammar.tsv (one line each)."""
    layer_dir = Path(layer_dir)
    rows = read_neurons(layer_dir)
    ppms = read_layer_motifs(layer_dir / "ppms.meme")
    sizes: dict[int, dict[int, int]] = {}
    for r in rows:
        sizes.setdefault(r.neuron, {})[r.subset] = r.n
    by_neuron: dict[int, list[Motif]] = {}
    for m in ppms:
        _, neuron, subset = parse_ppm_name(m.name)
        if sizes.get(neuron, {}).get(subset, 1) > 0:
            by_neuron.setdefault(neuron, []).append(m)
    neurons = {str(n): neuron_grammar(by_neuron[n], sizes.get(n, {}), db, params, tparams)
               for n in sorted(by_neuron)}
    result = {"parameters": vars(params), "neurons": neurons}
    write_text(layer_dir / "grammar.json", json.dumps(result, indent=1))
    write_text(layer_dir / "grammar.tsv", "neuron\tgrammar\n" + "".join(
        f"{n}\t{g['text'] or '-'}\n" for n, g in neurons.items()))
    return result


def grammar_run(out_dir: str | os.PathLike, motif_db: str | os.PathLike | None = None,
                release: str = DEFAULT_RELEASE, params: GrammarParams = GrammarParams(),
                db: Sequence[Motif] | None = None, tparams: TomtomParams = TomtomParams()
                ) -> dict[int, dict]:
    """Grammar of every decoded layer of a decode output directory (`db` overrides
    motif_db/release with motifs already loaded)."""
    db = load_motif_db(motif_db, release) if db is None else db
    return {layer: grammar_layer(Path(out_dir) / f"layer{layer}", db, params, tparams)
            for layer in decoded_layers(out_dir)}
