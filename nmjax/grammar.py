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
5. Each PPM gives an ordered list of sites; gaps are the bp between consecutive sites. Orders
   shared across PPMs form a prefix tree (the syntax tree); the neuron's one-line grammar is
   its most common order, with a fixed gap written `6N` and a varying gap `[10-20N]`.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
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
    so by default no further smoothing is applied (set laplace_pseudo for raw PPMs)."""

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
    rejoined (see `_join_spaced`)."""
    out = []
    for m in ppms:
        _, neuron, subset = parse_ppm_name(m.name)
        n = max(sizes.get(subset, int(m.nsites)), 1)
        parts = [Segment(subset, s, e, Motif(f"N{neuron}_S{subset}_{s}-{e}", m.ppm[s:e], n))
                 for s, e in segment_regions(m.ppm, n, params)]
        out += _join_spaced(parts, m.ppm, db, params, tparams) if db else parts
    return out


def _join_spaced(parts: list[Segment], ppm: np.ndarray, db: Sequence[Motif],
                 params: GrammarParams, tparams: TomtomParams) -> list[Segment]:
    """Replace two consecutive segments at most `max_spacer` bp apart by their union when the
    union's best database match (q < name_q) covers at least half of each: a motif with a
    low-IC spacer (NFI: TTGGC-N5-GCCAA) is one motif, not two half-sites."""
    pairs = [i for i in range(len(parts) - 1) if parts[i + 1].start - parts[i].end <= params.max_spacer]
    if not pairs:
        return parts
    unions = [Motif(parts[i].motif.name.rsplit("_", 1)[0] + f"_{parts[i].start}-{parts[i + 1].end}",
                    ppm[parts[i].start:parts[i + 1].end], parts[i].motif.nsites) for i in pairs]
    res = tomtom(unions, db, reverse_complement=True, params=tparams)
    joined: dict[int, Segment] = {}
    for k, i in enumerate(pairs):
        t = int(np.argmin(res.p_value[k]))
        a, b = parts[i], parts[i + 1]
        lo = max(0, -int(res.offset[k, t]))
        hi = min(b.end - a.start, len(db[t].ppm) - int(res.offset[k, t]))
        cover_a = min(hi, a.end - a.start) - lo
        cover_b = hi - max(lo, b.start - a.start)
        if (res.q_value[k, t] < params.name_q and cover_a >= (a.end - a.start) / 2
                and cover_b >= (b.end - b.start) / 2 and i - 1 not in joined):
            joined[i] = Segment(a.subset, a.start, b.end, unions[k])
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


def _name_match(named, j: int, length: int, db: Sequence[Motif], params: GrammarParams
                ) -> dict | None:
    """Best database match of dictionary motif j (q < name_q), and the matrix of that TF
    that best coincides with it (fewest unaligned columns on either side), which gives the
    motif's site span."""
    best = int(np.argmin(named.p_value[j]))
    if not named.q_value[j, best] < params.name_q:
        return None
    name = db[best].alt_name or db[best].name
    same = [t for t in np.flatnonzero(named.q_value[j] < params.name_q)
            if (db[t].alt_name or db[t].name) == name]
    site = min(same, key=lambda t: (len(db[t].ppm) + length - 2 * named.overlap[j, t],
                                    named.p_value[j, t], t))
    return {"target": db[best].name, "name": name, "q_value": float(named.q_value[j, best]),
            "orientation": "-" if named.reverse[j, best] else "+",
            "site_target": db[site].name, "site_offset": int(named.offset[j, site]),
            "site_length": len(db[site].ppm)}


def _site_span(rep_start: int, entry: dict) -> tuple[int, int]:
    """PPM span of a dictionary motif placed at rep_start: its coinciding database matrix
    if named (query column i <-> matrix column i + offset), else the representative."""
    if entry["match"]:
        start = rep_start - entry["match"]["site_offset"]
        return start, start + entry["match"]["site_length"]
    return rep_start, rep_start + entry["length"]


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
                   "ppm": np.round(segments[reps[j]].motif.ppm, 4).tolist(), "match": None}
                  for j in kept]
    if db:
        named = tomtom([segments[reps[j]].motif for j in kept], db, reverse_complement=True,
                       params=tparams)
        for k, entry in enumerate(dictionary):
            entry["match"] = _name_match(named, k, entry["length"], db, params)
    by_id = {d["id"]: d for d in dictionary}
    sites: dict[int, list[dict]] = {}
    for subset, pairs in sorted(located.items()):
        for j, rep_start in pairs:
            if j in ids:
                start, end = _site_span(rep_start, by_id[ids[j]])
                site = {"motif": ids[j], "start": start, "end": end}
                if site not in sites.setdefault(subset, []):
                    sites[subset].append(site)
        if subset in sites:
            sites[subset].sort(key=lambda x: (x["start"], x["end"], x["motif"]))
    names = {d["id"]: (d["match"]["name"] if d["match"] else d["id"]) for d in dictionary}
    orders = _orders(sites, sizes)
    located_segments = sum(len(p) for p in located.values())
    return {"dictionary": dictionary, "sites": {str(s): v for s, v in sorted(sites.items())},
            "orders": orders, "tree": _tree(sites, names),
            "text": _text(orders[0], names) if orders else "", "segments": len(segments),
            "unlocated_segments": len(segments) - located_segments,
            "pruned_motifs": len(reps) - len(kept)}


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


def _orders(sites: dict[int, list[dict]], sizes: dict[int, int]) -> list[dict]:
    """Distinct motif orders with the PPMs showing them and their gaps, most common first."""
    groups: dict[tuple, list[int]] = {}
    for subset, s in sites.items():
        groups.setdefault(tuple(x["motif"] for x in s), []).append(subset)
    out = []
    for order, subsets in groups.items():
        gaps = [_gaps(sites[s]) for s in subsets]
        out.append({"motifs": list(order), "subsets": sorted(subsets),
                    "samples": int(sum(sizes.get(s, 0) for s in subsets)),
                    "gaps": [{"min": min(g), "max": max(g), "values": dict(sorted(Counter(g).items()))}
                             for g in zip(*gaps)]})
    out.sort(key=lambda o: (-len(o["subsets"]), -o["samples"], o["motifs"]))
    return out


def _gap_text(gap: dict) -> str:
    return f"{gap['min']}N" if gap["min"] == gap["max"] else f"[{gap['min']}-{gap['max']}N]"


def _text(order: dict, names: dict[str, str]) -> str:
    parts = [names[order["motifs"][0]]]
    for gap, motif in zip(order["gaps"], order["motifs"][1:]):
        parts += [_gap_text(gap), names[motif]]
    return "-".join(parts)


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
