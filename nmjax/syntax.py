"""The syntax of one neuron: which motifs its decoupled PPMs hold, in which order and at which
gaps (method-notes §5), printed as in the paper: `CTCF-6N-CEBPB`, `NFIX-[10-20N]-NFIX`.

- A PPM's reading is its sites in order (name and strand) with the gaps between them (bp from
  one site's end to the next one's start; negative = the two sites overlap). A reading and its
  reverse complement (order and gaps reversed, strands swapped) are one order, written in a
  canonical orientation: fewer '-' than '+' strands, then the alphabetically smaller names.
- Every contiguous part of a reading is an order the PPM contains. An order's share is the
  weight (n x act) of the PPMs containing it over the weight of all PPMs with a site.
- The neuron's line is the longest order whose share is at least `line_share` (half) of the
  share of its least shared motif alone, and at least `line_floor` (ties: the larger share):
  where that motif occurs it occurs mostly in this order. A CTCF-6N-CEBPE held by 37 % of the
  weight, whose CTCF alone is held by 46 %, is the grammar of a neuron whose CEBPE alone is held
  by 92 % (example layer 5); comparing with the most shared order instead put such a dimer at
  the threshold, and the line flipped between machines.
- A gap is printed from a robust interval of its values over the PPMs containing the order,
  weighted by n x act: values outside the Tukey fences (`fence` interquartile ranges beyond
  the weighted quartiles) are left out, so one outlier subset does not widen it. One value is
  a hard gap (`6N`), several a soft range (`[10-20N]`), an overlap is written as one
  (`(overlap 2bp)`), never as a negative spacer; the line says how many subsets lie inside.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

FLIP = {"+": "-", "-": "+", ".": "."}


@dataclass(frozen=True)
class SyntaxConfig:
    line_share: float = 0.5     # of the share of the order's least shared motif alone,
    line_floor: float = 0.25    # and at least this share, make an order a candidate line
    fence: float = 1.5
    hole: int = 6               # bp between gap values that splits an order into two
    listed_share: float = 0.1   # orders of at least this share are kept in grammar.json


def canonical(tokens: Sequence[tuple[str, str]], gaps: Sequence[int]
              ) -> tuple[tuple[tuple[str, str], ...], tuple[int, ...], bool]:
    """(tokens, gaps, flipped) of a reading in its canonical orientation."""
    fwd = (tuple(tokens), tuple(gaps))
    rev = (tuple((n, FLIP[s]) for n, s in reversed(tokens)), tuple(reversed(gaps)))

    def key(reading):
        toks, gs = reading
        strands = [s for _, s in toks]
        return strands.count("-") - strands.count("+"), [n for n, _ in toks], strands, gs

    if key(rev) < key(fwd):
        return rev[0], rev[1], True
    return fwd[0], fwd[1], False


def gap_interval(values: Sequence[int], weights: Sequence[float], fence: float
                 ) -> tuple[int, int]:
    """[lo, hi] of the values inside the Tukey fences of their weighted quartiles."""
    v, w = np.asarray(values, float), np.asarray(weights, float)
    order = np.argsort(v, kind="stable")
    v, w = v[order], np.maximum(w[order], 1e-12)
    cum = np.cumsum(w) / w.sum()

    def quantile(q):
        return v[min(np.searchsorted(cum, q - 1e-12), len(v) - 1)]

    q1, q3 = quantile(0.25), quantile(0.75)
    inside = v[(v >= q1 - fence * (q3 - q1)) & (v <= q3 + fence * (q3 - q1))]
    return int(inside.min()), int(inside.max())


def gap_text(lo: int, hi: int) -> str:
    if lo >= 0:
        return f"{lo}N" if lo == hi else f"[{lo}-{hi}N]"
    if hi < 0:
        return f"(overlap {-hi}bp)" if lo == hi else f"(overlap {-hi}-{-lo}bp)"
    return f"[overlap {-lo}bp to {hi}N]"


def order_text(names: Sequence[str], gaps: Sequence[str]) -> str:
    return "-".join([names[0]] + [x for g, n in zip(gaps, names[1:]) for x in (g, n)])


def neuron_syntax(sites: dict[int, list[dict]], weights: dict[int, float],
                  params: SyntaxConfig = SyntaxConfig()) -> dict:
    """The neuron's line and its orders (module docstring). `sites`: per subset, its sites in
    PPM order (name, strand, start, end); `weights`: n x act per subset."""
    found: dict[tuple, dict] = {}     # canonical tokens -> {subset: (gaps, span, flipped)}
    for subset, ss in sorted(sites.items()):
        tokens = [(s["name"], s["strand"]) for s in ss]
        gaps = [b["start"] - a["end"] for a, b in zip(ss, ss[1:])]
        for i in range(len(ss)):
            for j in range(i + 1, len(ss) + 1):
                toks, gs, flipped = canonical(tokens[i:j], gaps[i:j - 1])
                span = (ss[i]["start"], max(s["end"] for s in ss[i:j]))
                found.setdefault(toks, {}).setdefault(subset, (gs, span, flipped))  # once per PPM
    total = sum(weights.get(s, 0.0) for s in sites) or 1.0
    orders = [_describe(toks, part, weights, total, params)
              for toks, by_subset in found.items() for part in gap_modes(by_subset, params.hole)]
    orders.sort(key=lambda o: (-o["share"], -len(o["motifs"]), o["text"]))
    line = _line(orders, params)
    listed = [o for o in orders if o["share"] >= params.listed_share or o is line]
    return {"text": line["text"] if line else "", "line": line, "orders": listed}


def gap_modes(by_subset: dict[int, tuple], hole: int) -> list[dict[int, tuple]]:
    """The subsets of an order split where one of its gaps leaves a hole of more than `hole`
    bp among their values, recursively (NFIX-NFIX at 12-16 bp and at 37-40 bp are two
    grammars, not [12-40N])."""
    subsets = sorted(by_subset)
    if not subsets or not by_subset[subsets[0]][0]:
        return [by_subset]
    for g in range(len(by_subset[subsets[0]][0])):
        values = sorted({by_subset[s][0][g] for s in subsets})
        cuts = [b for a, b in zip(values, values[1:]) if b - a > hole]
        if cuts:
            edges = [-np.inf] + cuts + [np.inf]
            return [mode for lo, hi in zip(edges, edges[1:])
                    for mode in gap_modes({s: v for s, v in by_subset.items()
                                           if lo <= v[0][g] < hi}, hole)]
    return [by_subset]


def _describe(tokens: tuple, by_subset: dict[int, tuple], weights: dict[int, float],
              total: float, params: SyntaxConfig) -> dict:
    """An order's text, gap intervals, share and support; `spans` holds, per subset, the PPM
    columns [start, end) from its first to its last site and whether it reads reversed."""
    subsets = sorted(by_subset)
    w = [weights.get(s, 0.0) for s in subsets]
    gaps, inside = [], np.ones(len(subsets), bool)
    for g in range(len(tokens) - 1):
        values = [by_subset[s][0][g] for s in subsets]
        lo, hi = gap_interval(values, w, params.fence)
        inside &= (np.array(values) >= lo) & (np.array(values) <= hi)
        counts: dict[int, int] = {}
        for v in values:
            counts[v] = counts.get(v, 0) + 1
        gaps.append({"lo": lo, "hi": hi, "text": gap_text(lo, hi),
                     "values": {str(k): counts[k] for k in sorted(counts)}})
    names = [n for n, _ in tokens]
    return {"motifs": names, "strands": [s for _, s in tokens],
            "text": order_text(names, [g["text"] for g in gaps]), "gaps": gaps,
            "subsets": subsets, "share": float(sum(w) / total),
            "support": int(inside.sum()), "of": len(subsets),
            "spans": {str(s): [*by_subset[s][1], by_subset[s][2]]
                      for s, ok in zip(subsets, inside) if ok}}


def _line(orders: list[dict], params: SyntaxConfig) -> dict | None:
    if not orders:
        return None
    alone: dict[str, float] = {}     # share of each motif alone (every part is an order)
    for o in orders:
        if len(o["motifs"]) == 1:
            alone[o["motifs"][0]] = max(alone.get(o["motifs"][0], 0.0), o["share"])
    shared = [o for o in orders if o["share"] >= max(
        params.line_floor, params.line_share * min(alone[m] for m in o["motifs"]))]
    if not shared:
        return orders[0]
    return max(shared, key=lambda o: (len(o["motifs"]), o["share"], [-ord(c) for c in o["text"]]))
