"""Steps 1-3 of a neuron's dictionary (`nmjax.dictionary`): its PPMs cut into segments, the
segments clustered by Tomtom on both strands, and each cluster's context cut into the database
matrices it holds side by side (units).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .frames import DecodedPPM, Placement, alignment, inverse, weighted_frame
from .matching import TomtomConfig, TomtomResult, tomtom
from .meme import Motif
from .motifs import SegmentRule, information_content, segment_ppm, unsmooth


@dataclass(frozen=True)
class DictionaryConfig:
    """Thresholds of the dictionary (defaults: the authors' q-values where they give one)."""

    cluster_q: float = 0.01          # segments / units of one motif (the authors' 0.01)
    min_overlap: float = 0.5         # of the shorter motif, to be one motif
    name_q: float = 0.01             # a database name (method-notes §4: discovered at 0.01)
    tie_log_fraction: float = 0.9    # paralogs whose -log10 p is >= this share of the best's
    max_names: int = 3
    max_spacer: int = 5              # half-sites at most this far apart may be one motif
    min_part: int = 6                # columns of a matrix on its side of a composite cut
    cut_step: int = 2                # bp between the cuts tried
    max_part_overlap: float = 0.3    # of the shorter matrix, between two parts
    context_flank: int = 10          # bp each side of a cluster's context
    name_margin: int = 2             # bp each side of an entry's span when it is named
    min_subsets: int = 2             # an entry seen in fewer PPMs is dropped (all if fewer),
    min_share: float = 0.05          # or in PPMs of less than this share of the weight,
    min_novel_bits: float = 6.0      # or, unnamed, with less information than this
    palindrome_distance: float = 0.15
    site_fit: float = 0.5            # a placement must read as its matrix (`site_fit`)


@dataclass(frozen=True)
class Segment:
    subset: int
    start: int
    end: int
    motif: Motif

    @property
    def length(self) -> int:
        return self.end - self.start


def palindromic(ppm: np.ndarray, params: DictionaryConfig) -> bool:
    """A matrix that reads the same on both strands (mean total-variation distance between its
    columns and its reverse complement's below palindrome_distance), e.g. CEBPB's ATTGCGCAAT."""
    ppm = np.asarray(ppm)
    return float(0.5 * np.abs(ppm - ppm[::-1, ::-1]).sum(1).mean()) < params.palindrome_distance


def tied_names(candidates: Sequence[tuple[float, str]], params: DictionaryConfig) -> list[str]:
    """TF names of the (p-value, name) candidates whose -log10 p is at least tie_log_fraction
    of the first candidate's (the reference; the best when sorted), distinct
    (case-insensitive), at most max_names, the reference first and then by p. A ratio of p
    would not do: a 50/50 mix of the CEBPB and CEBPE matrices gives them p = 3.5e-18 and
    2.8e-17."""
    chosen = {candidates[0][1].upper(): candidates[0][1]}
    for p, name in sorted(candidates[1:]):
        if p > candidates[0][0] ** params.tie_log_fraction or len(chosen) == params.max_names:
            break
        chosen.setdefault(name.upper(), name)
    return list(chosen.values())


def best_match(res: TomtomResult, q: int, db: Sequence[Motif], params: DictionaryConfig,
               target: int | None = None) -> dict | None:
    """The best database matrix of query q (or the given `target`), if q < name_q, with the
    paralog matrices that tie with it (`tied_names`); else None."""
    t = int(np.argmin(res.p_value[q])) if target is None else target
    if not res.q_value[q, t] < params.name_q:
        return None
    significant = [t] + [j for j in np.flatnonzero(res.q_value[q] < params.name_q) if j != t]
    ties = tied_names([(float(res.p_value[q, j]), db[j].alt_name or db[j].name)
                       for j in significant], params)
    return {"target": db[t].name, "target_name": db[t].alt_name or db[t].name, "ties": ties,
            "p_value": float(res.p_value[q, t]), "q_value": float(res.q_value[q, t]),
            "orientation": "-" if res.reverse[q, t] else "+", "index": t}


# -- 1. segments ------------------------------------------------------------------------
def segment_neuron(ppms: Sequence[DecodedPPM], rule: SegmentRule, db: Sequence[Motif],
                   params: DictionaryConfig, tparams: TomtomConfig) -> list[Segment]:
    """Segments of every PPM of a neuron, half-sites of one database matrix joined."""
    per_ppm = []
    for d in ppms:
        regions = segment_ppm(unsmooth(d.ppm, d.n, d.pseudocount), d.n, rule)
        parts = [Segment(d.subset, s, e, Motif(f"S{d.subset}_{s}-{e}", d.ppm[s:e], d.n))
                 for s, e in regions]
        pairs = [i for i in range(len(parts) - 1)
                 if parts[i + 1].start - parts[i].end <= params.max_spacer]
        per_ppm.append((d, parts, pairs))
    unions = [Segment(d.subset, parts[i].start, parts[i + 1].end,
                      Motif(f"S{d.subset}_{parts[i].start}-{parts[i + 1].end}",
                            d.ppm[parts[i].start:parts[i + 1].end], d.n))
              for d, parts, pairs in per_ppm for i in pairs]
    firsts, which = distinct([u.motif for u in unions], range(len(unions)))
    res = tomtom([unions[i].motif for i in firsts], db, True, tparams) if unions and db else None
    out, row = [], 0
    for _, parts, pairs in per_ppm:
        joined = {}
        for k, i in enumerate(pairs, start=row):
            if res is not None and i - 1 not in joined and _covers_both(
                    res, which[k], parts[i], parts[i + 1], db, params):
                joined[i] = unions[k]
        row += len(pairs)
        skip = False
        for i, seg in enumerate(parts):
            if not skip:
                out.append(joined.get(i, seg))
            skip = i in joined
    return out


def _covers_both(res: TomtomResult, k: int, a: Segment, b: Segment, db: Sequence[Motif],
                 params: DictionaryConfig) -> bool:
    """Whether the union of a and b (row k) matches a matrix covering half of each."""
    t = int(np.argmin(res.p_value[k]))
    lo = max(0, -int(res.offset[k, t]))
    hi = min(b.end - a.start, len(db[t].ppm) - int(res.offset[k, t]))
    return bool(res.q_value[k, t] < params.name_q and min(hi, a.length) - lo >= a.length / 2
                and hi - max(lo, b.start - a.start) >= b.length / 2)


# -- 2. clusters of motifs (segments, then units) -------------------------------------------
def motif_key(motif: Motif) -> tuple[int, str]:
    """Length and consensus (n where a column holds at most 0.5 bit): decoupled PPMs of one
    neuron repeat the same segment many times, and Tomtom needs to see each only once."""
    ic = information_content(motif.ppm)
    return len(motif.ppm), "".join("ACGT"[b] if i > 0.5 else "n"
                                   for b, i in zip(np.argmax(motif.ppm, 1), ic))


def distinct(motifs: Sequence[Motif], order: Sequence[int]) -> tuple[list[int], list[int]]:
    """The first motif of every distinct `motif_key` in `order` (a permutation of the motifs),
    and each motif's position among those."""
    keys = [motif_key(m) for m in motifs]
    firsts, position = [], {}
    for i in order:
        if keys[i] not in position:
            position[keys[i]] = len(firsts)
            firsts.append(i)
    return firsts, [position[k] for k in keys]


def greedy_clusters(motifs: Sequence[Motif], order: Sequence[int], db: Sequence[Motif],
                    params: DictionaryConfig, tparams: TomtomConfig
                    ) -> list[tuple[int, list[tuple[int, int, bool]]]]:
    """Greedy Tomtom clustering, both strands: in `order`, a representative takes every free
    motif matching it (q < cluster_q in either direction) over min_overlap of the shorter.
    Motifs of one `motif_key` are compared once and go together. Returns (representative,
    [(member, shift, reverse)]) with the representative's frame in each member's frame (the
    representative itself and its copies at (0, False))."""
    firsts, which = distinct(motifs, order)
    uniq = [motifs[i] for i in firsts]
    copies: dict[int, list[int]] = {}
    for i in order:
        copies.setdefault(which[i], []).append(i)
    res = tomtom(uniq, uniq + list(db), True, tparams)
    lengths = [len(m.ppm) for m in uniq]
    free = np.ones(len(uniq), bool)
    out = []
    for r in range(len(uniq)):
        if not free[r]:
            continue
        free[r] = False
        members = [(i, 0, False) for i in copies[r]]
        for j in np.flatnonzero(free):
            both = min(lengths[j], lengths[r])
            fwd, back = res.q_value[j, r], res.q_value[r, j]
            if min(fwd, back) >= params.cluster_q or res.overlap[j, r] < params.min_overlap * both:
                continue
            if fwd <= back:   # member as query: the representative's frame in the member's
                shift, rev = alignment(res, j, r, lengths[r])
            else:             # representative as query: the member's frame in its frame
                shift, rev = inverse(*alignment(res, r, j, lengths[j]))
            members += [(i, shift, rev) for i in copies[int(j)]]
            free[j] = False
        out.append((copies[r][0], members))
    return out


def segment_clusters(segments: Sequence[Segment], db: Sequence[Motif],
                     params: DictionaryConfig, tparams: TomtomConfig
                     ) -> list[tuple[int, list[Placement], list[Segment]]]:
    """Clusters of segments: (representative, its frame's placement in every member's PPM,
    the members)."""
    ic = [information_content(s.motif.ppm).sum() for s in segments]
    order = sorted(range(len(segments)), key=lambda i: (-segments[i].length, -ic[i], i))
    out = []
    for r, members in greedy_clusters([s.motif for s in segments], order, db, params, tparams):
        places = [Placement(segments[j].subset, segments[j].start, False).through(shift, rev)
                  for j, shift, rev in members]
        out.append((r, places, [segments[j] for j, _, _ in members]))
    return out


# -- 3. parts of a cluster ------------------------------------------------------------------
@dataclass(frozen=True)
class Unit:
    """A stretch [lo, hi) of a cluster representative's frame holding one motif, with its
    database match (None: novel), and the PPMs it occurs in."""

    lo: int
    hi: int
    match: dict | None
    places: tuple[Placement, ...]
    ppm: np.ndarray


def cluster_units(clusters, ppms: dict[int, DecodedPPM], db: Sequence[Motif],
                  params: DictionaryConfig, tparams: TomtomConfig
                  ) -> tuple[list[Unit], list[Segment]]:
    """The units of every cluster (module docstring, step 3). A database matrix occurs in a
    member's PPM when half of it lies inside the member's segment (a segment that only touches
    it is a neighbour's); a novel unit when it and the segment overlap over half of the
    shorter (a half-site segment holds part of it). Returns the units and the members that
    hold none of their cluster's units (clustered again by `neuron_dictionary`)."""
    flank = params.context_flank
    contexts = []
    for r, places, members in clusters:
        length = members[0].length
        contexts.append((weighted_frame(ppms, places, -flank, length + flank), length))
    spans = _split(contexts, db, params, tparams)
    units, unexplained = [], []
    for (r, places, members), (context, _), parts in zip(clusters, contexts, spans):
        explained = np.zeros(len(members), bool)
        for lo, hi, match in parts:
            occurs = []
            for k, (place, seg) in enumerate(zip(places, members)):
                a, b = place.span(lo, hi)
                inside = min(b, seg.end) - max(a, seg.start)
                if inside >= 0.5 * ((hi - lo) if match else min(hi - lo, seg.length)):
                    occurs.append(place.through(lo, False))
                    explained[k] = True
            if occurs:
                units.append(Unit(lo, hi, match, tuple(occurs),
                                  context[lo + flank:hi + flank]))
        unexplained += [seg for seg, ok in zip(members, explained) if not ok and seg is not
                        members[0]]
    return units, unexplained


def _match_span(res: TomtomResult, q: int, start: int, db: Sequence[Motif],
                params: DictionaryConfig) -> tuple[int, int, dict] | None:
    """The best match of query q (whose column 0 is frame column `start`) and its matrix's
    span in the frame."""
    match = best_match(res, q, db, params)
    if match is None:
        return None
    o = int(res.offset[q, match["index"]])
    return start - o, start - o + len(db[match["index"]].ppm), match


def _split(contexts: Sequence[tuple[np.ndarray, int]], db: Sequence[Motif],
           params: DictionaryConfig, tparams: TomtomConfig
           ) -> list[list[tuple[int, int, dict | None]]]:
    """Per context (columns -flank .. length + flank of a representative's frame), its units
    as (lo, hi, match) in the frame: the database matrices side by side when the
    representative is a composite, else its whole best match, else itself (novel).

    A cut c splits a window in two; it is kept when both sides match (q < name_q), each side's
    matrix has min_part columns on its side of the representative, the two matrices overlap
    by at most max_part_overlap of the shorter, and they are not both mostly inside the one
    matrix that matches the whole window (a long single motif is not cut into halves). Of
    such cuts the one whose weaker side has the lowest p is kept, and each side is cut again.
    One Tomtom call per depth for all contexts."""
    flank = params.context_flank
    if not db:
        return [[(0, length, None)] for _, length in contexts]
    res = tomtom([Motif("c", ctx, 1000) for ctx, _ in contexts], db, True, tparams)
    wholes = [_match_span(res, k, -flank, db, params) for k in range(len(contexts))]
    # a piece: (context, window lo, hi, core lo, hi, the window's own match)
    pieces = [(k, -flank, length + flank, 0, length, whole)
              for k, ((_, length), whole) in enumerate(zip(contexts, wholes))
              if not _one_motif(length, whole, params)]
    parts: list[list] = [[] for _ in contexts]
    depth = 0
    while pieces:
        windows, layout = [], []
        for k, lo, hi, core_lo, core_hi, _ in pieces:
            cuts = range(core_lo + params.min_part, core_hi - params.min_part + 1, params.cut_step)
            layout.append([(c, len(windows) + 2 * i) for i, c in enumerate(cuts)])
            ctx = contexts[k][0]
            for c in cuts:
                windows += [Motif("l", ctx[lo + flank:c + flank], 1000),
                            Motif("r", ctx[c + flank:hi + flank], 1000)]
        firsts, which = distinct(windows, range(len(windows)))
        res = tomtom([windows[i] for i in firsts], db, True, tparams) if windows else None
        cut_pieces = []
        for (k, lo, hi, core_lo, core_hi, own), cuts in zip(pieces, layout):
            best = None
            for c, w in cuts:
                left = _match_span(res, which[w], lo, db, params)
                right = _match_span(res, which[w + 1], c, db, params)
                if left and right and _valid_cut(c, left, right, core_lo, core_hi, own, params):
                    key = (max(left[2]["p_value"], right[2]["p_value"]), c)
                    if best is None or key < best[0]:
                        best = (key, c, left, right)
            if best is None:
                if depth > 0:
                    parts[k].append(own)
                continue
            _, c, left, right = best
            cut_pieces += [(k, lo, c, core_lo, c, left), (k, c, hi, c, core_hi, right)]
        pieces, depth = cut_pieces, depth + 1
    return [sorted(p, key=lambda x: x[0]) if p else [whole] if whole else [(0, length, None)]
            for p, whole, (_, length) in zip(parts, wholes, contexts)]


def _one_motif(length: int, whole: tuple | None, params: DictionaryConfig) -> bool:
    """Whether a representative of `length` columns has no room for a second matrix beside
    its whole match: fewer than min_part of its columns on either side of the match's span."""
    return whole is not None and max(whole[0], length - whole[1]) < params.min_part


def _covered(span: tuple[int, int], by: tuple | None) -> bool:
    """Whether more than half of `span` lies inside `by`."""
    return by is not None and 2 * (min(span[1], by[1]) - max(span[0], by[0])) > span[1] - span[0]


def _valid_cut(c: int, left: tuple, right: tuple, core_lo: int, core_hi: int, own: tuple | None,
               params: DictionaryConfig) -> bool:
    (ls, le), (rs, re_) = left[:2], right[:2]
    shared = min(le, re_) - max(ls, rs)
    return not (ls >= rs or shared > params.max_part_overlap * min(le - ls, re_ - rs)
                or min(le, c) - max(ls, core_lo) < params.min_part
                or min(re_, core_hi) - max(rs, c) < params.min_part
                or (_covered((ls, le), own) and _covered((rs, re_), own)))
