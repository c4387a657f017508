"""Grammars of a decode output: per neuron its dictionary of hard motifs (`nmjax.dictionary`) and
its syntax (`nmjax.syntax`); per layer and for the whole model, the grammars and motifs ranked
by the number of neurons carrying them (paper Fig. 5, Fig. 6a).

Files:
- DIR/layer{L}/grammar.json: per neuron, its dictionary (id, name, ties, match, PPM, subsets),
  its sites per decoupled PPM, its orders (share, gaps) and its line;
- DIR/layer{L}/grammar.tsv: neuron, line, subsets inside the line's gaps / containing it,
  share of the neuron's weight, motifs of its dictionary;
- DIR/grammars.tsv and DIR/grammars.json: per layer, every grammar (an order of two or more
  motifs) and every motif, with the neurons whose line it is and the neurons where it holds at
  least `carry_share` of the weight, ranked by neurons.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from . import runfolder
from .clusters import DictionaryConfig, greedy_clusters
from .config import DEFAULT_SEGMENT_RULE
from .dictionary import neuron_dictionary
from .fileio import write_text
from .frames import DecodedPPM
from .matching import TomtomConfig
from .meme import Motif, write_meme
from .motifdb import DEFAULT_RELEASE, load_motif_db
from .motifs import information_content, segment_rule
from .runfolder import decoded_layers, layer_of, parse_ppm_name, read_neurons, read_ppms, read_run
from .syntax import SyntaxConfig, neuron_syntax


@dataclass(frozen=True)
class GrammarConfig:
    """Settings of the grammar stage: the segmentation rule (None: the decode's own, from
    run.json), the dictionary's and the syntax's thresholds, and the share of a neuron's weight
    that makes it carry a grammar in the layer summary."""

    segment_rule: str | None = None
    dictionary: DictionaryConfig = field(default_factory=DictionaryConfig)
    syntax: SyntaxConfig = field(default_factory=SyntaxConfig)
    carry_share: float = 0.2


def neuron_grammar(ppms: Sequence[DecodedPPM], db: Sequence[Motif], rule_name: str,
                   params: GrammarConfig = GrammarConfig(),
                   tparams: TomtomConfig = TomtomConfig()) -> dict:
    """Dictionary, sites, orders and line of one neuron (JSON-ready)."""
    entries, sites, stats = neuron_dictionary(ppms, segment_rule(rule_name), db,
                                              params.dictionary, tparams)
    weights = {d.subset: d.weight for d in ppms}
    syntax = neuron_syntax(sites, weights, params.syntax)
    by_subset = {d.subset: d for d in ppms}
    for o in syntax["orders"]:
        if len(o["motifs"]) > 1:
            o["ppm"] = np.round(composite_ppm(o["spans"], by_subset), 4).tolist()
    total = sum(weights.values()) or 1.0
    dictionary = []
    for e in entries:
        subsets = sorted({p.subset for p in e.placements})
        m = e.match
        dictionary.append({
            "id": e.id, "name": e.name, "ties": m["ties"] if m else [],
            "match": {k: m[k] for k in ("target", "target_name", "p_value", "q_value",
                                        "orientation")} if m else None,
            "length": e.site_length, "palindrome": e.palindrome, "subsets": len(subsets),
            "share": float(sum(weights[s] for s in subsets) / total),
            "ppm": np.round(e.ppm, 4).tolist()})
    return {"text": syntax["text"], "line": syntax["line"], "orders": syntax["orders"],
            "dictionary": dictionary, "sites": {str(s): v for s, v in sites.items()},
            "ppms": len(ppms), "ppms_with_sites": len(sites), **stats}


def composite_ppm(spans: dict[str, list], ppms: dict[int, DecodedPPM]) -> np.ndarray:
    """The PPM of an order: the weighted mean of its PPM stretches (first site start to last
    site end, read in the order's orientation) of the most common length (weighted)."""
    length: dict[int, float] = {}
    for s, (start, end, _) in spans.items():
        length[end - start] = length.get(end - start, 0.0) + ppms[int(s)].weight
    best = max(length, key=lambda k: (length[k], -k))
    total, weight = np.zeros((best, 4)), 0.0
    for s, (start, end, flipped) in spans.items():
        if end - start != best:
            continue
        d = ppms[int(s)]
        window = np.full((best, 4), 0.25)
        lo, hi = max(start, 0), min(end, len(d.ppm))
        window[lo - start:hi - start] = d.ppm[lo:hi]
        total += max(d.weight, 1e-12) * (window[::-1, ::-1] if flipped else window)
        weight += max(d.weight, 1e-12)
    return total / weight


def layer_ppms(layer_dir: Path, pseudocount: float) -> dict[int, list[DecodedPPM]]:
    """Each alive neuron's decoupled PPMs (ppms.meme) with their n and act (neurons.tsv)."""
    rows = {(r.neuron, r.subset): r for r in read_neurons(layer_dir)}
    out: dict[int, list[DecodedPPM]] = {}
    for m in read_ppms(layer_dir):
        _, neuron, subset = parse_ppm_name(m.name)
        r = rows.get((neuron, subset))
        if r is not None and r.n > 0:
            out.setdefault(neuron, []).append(DecodedPPM(subset, m.ppm, r.n, r.act, pseudocount))
    return out


def run_settings(out_dir: Path) -> tuple[str, float]:
    """The segmentation rule and Laplace pseudocount a decode used (run.json; defaults if
    absent)."""
    parameters = (read_run(out_dir) or {}).get("parameters", {})
    return (parameters.get("segment_rule", DEFAULT_SEGMENT_RULE),
            float(parameters.get("laplace_pseudocount", 80.0)))


def grammar_layer(layer_dir: str | os.PathLike, db: Sequence[Motif],
                  params: GrammarConfig = GrammarConfig(),
                  tparams: TomtomConfig = TomtomConfig()) -> dict:
    """Grammar of every alive neuron of a layer; writes grammar.json and grammar.tsv."""
    layer_dir = Path(layer_dir)
    rule, pseudocount = run_settings(layer_dir.parent)
    rule = params.segment_rule or rule
    by_neuron = layer_ppms(layer_dir, pseudocount)
    neurons = {str(n): neuron_grammar(by_neuron[n], db, rule, params, tparams)
               for n in sorted(by_neuron)}
    motifs, counts = layer_dictionary(neurons, db, params, tparams)
    write_layer_dictionary(layer_dir, motifs)
    result = {"segment_rule": rule, "parameters": _jsonable(params), "dictionary": counts,
              "neurons": neurons}
    write_text(layer_dir / "grammar.json", json.dumps(result, indent=1))
    rows = ["neuron\tgrammar\tsupport\tshare\tmotifs"]
    for n, g in neurons.items():
        line = g["line"]
        support = f"{line['support']}/{line['of']}" if line else "-"
        share = f"{line['share']:.2f}" if line else "-"
        rows.append(f"{n}\t{g['text'] or '-'}\t{support}\t{share}\t"
                    f"{','.join(d['name'] for d in g['dictionary']) or '-'}")
    write_text(layer_dir / "grammar.tsv", "\n".join(rows) + "\n")
    return result


def _jsonable(params: GrammarConfig) -> dict:
    return asdict(params)


# -- layer and model summary ----------------------------------------------------------------
def layer_summary(neurons: dict[str, dict], carry_share: float) -> dict:
    """Grammars (orders of 2+ motifs) and motifs of a layer ranked by neurons: per item the
    neurons whose line it is (`line`) and the neurons where it holds >= carry_share of the
    weight (`carried`). Orders of different neurons are one grammar when they have the same
    motifs and strands and every gap interval overlaps (a soft gap differs from neuron to
    neuron); it is shown as the order of the neuron where it holds the most weight."""
    candidates = []
    for neuron, g in neurons.items():
        line = g.get("line")
        for o in g["orders"]:
            is_line = line is not None and (o["text"], o["strands"]) == (line["text"],
                                                                       line["strands"])
            if len(o["motifs"]) > 1 and (o["share"] >= carry_share or is_line):
                candidates.append((int(neuron), o, is_line))
    candidates.sort(key=lambda c: (-c[1]["share"], c[0], c[1]["text"]))
    groups: list[dict] = []
    for n, o, is_line in candidates:
        group = next((grp for grp in groups if _same_grammar(grp["order"], o)), None)
        if group is None:
            group = {"order": o, "neuron": n, "line": set(), "carried": set(), "texts": {},
                     "shares": {}}
            groups.append(group)
        group["carried"].add(n)
        group["texts"].setdefault(n, o["text"])
        group["shares"].setdefault(n, o["share"])
        if is_line:
            group["line"].add(n)
    out_grammars = [{"text": grp["order"]["text"], "motifs": grp["order"]["motifs"],
                     "strands": grp["order"]["strands"],
                     "key": _grammar_key(grp["order"]), "ppm": grp["order"].get("ppm"),
                     "line": sorted(grp["line"]), "carried": sorted(grp["carried"]),
                     "texts": {str(k): t for k, t in sorted(grp["texts"].items())},
                     "shares": {str(k): v for k, v in sorted(grp["shares"].items())},
                     "best_neuron": grp["neuron"]} for grp in groups]
    out_grammars.sort(key=lambda x: (-len(x["line"]), -len(x["carried"]), x["text"]))
    motifs: dict[str, dict] = {}
    for neuron, g in neurons.items():
        for d in g["dictionary"]:
            if d["share"] >= carry_share:
                item = motifs.setdefault(d["name"], {"neurons": [], "best": -1.0})
                item["neurons"].append(int(neuron))
                if d["share"] > item["best"]:
                    item.update(best=d["share"], ppm=d["ppm"], ties=d["ties"])
    out_motifs = [{"name": name, "carried": sorted(item["neurons"]),
                   "line": sorted(int(n) for n, g in neurons.items()
                                  if g.get("line") and g["line"]["motifs"] == [name]),
                   "ties": item["ties"], "ppm": item["ppm"]} for name, item in motifs.items()]
    out_motifs.sort(key=lambda x: (-len(x["carried"]), -len(x["line"]), x["name"]))
    return {"grammars": out_grammars, "motifs": out_motifs}


def _same_grammar(a: dict, b: dict) -> bool:
    return (a["motifs"] == b["motifs"] and a["strands"] == b["strands"]
            and all(x["lo"] <= y["hi"] and y["lo"] <= x["hi"] for x, y in zip(a["gaps"], b["gaps"])))


def _grammar_key(order: dict) -> str:
    """A grammar's identity across layers: motifs with strands, and its gaps."""
    return "|".join(f"{m}({s})" for m, s in zip(order["motifs"], order["strands"])) + "|" + \
        ",".join(g["text"] for g in order["gaps"])


def layer_dictionary(neurons: dict[str, dict], db: Sequence[Motif], params: GrammarConfig,
                     tparams: TomtomConfig) -> tuple[list[dict], dict]:
    """The layer's dictionary (paper Fig. 5: the motifs of all its neurons): neuron entries
    with the same best database matrix are one motif (their PPMs share that matrix's frame and
    are averaged); novel entries are clustered by Tomtom (both strands, representative = the
    most informative). Returns the motifs, most neurons first, and the paper's counts."""
    named: dict[str, list] = {}
    novel: list[tuple[int, dict]] = []
    for n, g in neurons.items():
        for d in g["dictionary"]:
            if d["match"]:
                named.setdefault(d["match"]["target"], []).append((int(n), d))
            else:
                novel.append((int(n), d))
    motifs = [{"name": items[0][1]["match"]["target_name"], "match": target,
               "neurons": sorted({n for n, _ in items}),
               "ppm": np.mean([d["ppm"] for _, d in items], axis=0)}
              for target, items in named.items()]
    if novel:
        queries = [Motif(f"N{n}_{d['id']}", np.array(d["ppm"]), 1000) for n, d in novel]
        ic = [information_content(m.ppm).sum() for m in queries]
        order = sorted(range(len(novel)), key=lambda i: (-ic[i], i))
        for r, members in greedy_clusters(queries, order, db, params.dictionary, tparams):
            motifs.append({"name": novel[r][1]["name"], "match": None,
                           "neurons": sorted({novel[j][0] for j, _, _ in members}),
                           "ppm": np.array(novel[r][1]["ppm"])})
    motifs.sort(key=lambda m: (-len(m["neurons"]), m["name"]))
    entries = sum(len(g["dictionary"]) for g in neurons.values())
    counts = {"neuron_motifs": entries, "neuron_motifs_matched": entries - len(novel),
              "neuron_motifs_novel": len(novel), "database_matrices": len(named),
              "layer_motifs": len(motifs), "layer_motifs_novel": sum(m["match"] is None
                                                                     for m in motifs)}
    return motifs, counts


def write_layer_dictionary(layer_dir: Path, motifs: list[dict]) -> None:
    """layer{L}/dictionary.meme (one motif per layer motif) and dictionary.tsv."""
    names = [f"L{layer_of(layer_dir)}_M{k + 1}" for k in range(len(motifs))]
    write_meme(layer_dir / "dictionary.meme",
               [Motif(name, np.asarray(m["ppm"]), len(m["neurons"]), m["name"])
                for name, m in zip(names, motifs)])
    write_text(layer_dir / "dictionary.tsv", "motif\tname\tdatabase_match\tneurons\tneuron_ids\n"
               + "".join(f"{name}\t{m['name']}\t{m['match'] or 'novel'}\t{len(m['neurons'])}\t"
                         f"{','.join(map(str, m['neurons']))}\n" for name, m in zip(names, motifs)))


def write_summary(out_dir: Path, layers: dict[int, dict], params: GrammarConfig) -> dict:
    """DIR/grammars.json and DIR/grammars.tsv from every layer's grammar.json content."""
    summary = {str(l): {**layer_summary(r["neurons"], params.carry_share),
                        "dictionary": r["dictionary"]} for l, r in layers.items()}
    write_text(out_dir / "grammars.json", json.dumps(
        {"carry_share": params.carry_share, "layers": summary}, indent=1))
    rows = ["layer\tkind\tgrammar\tneurons_line\tneurons_carrying\tline_of\tcarried_by"]
    for layer, s in summary.items():
        for kind, items, label in (("grammar", s["grammars"], "text"), ("motif", s["motifs"], "name")):
            for it in items:
                rows.append(f"{layer}\t{kind}\t{it[label]}\t{len(it['line'])}\t{len(it['carried'])}"
                            f"\t{','.join(map(str, it['line'])) or '-'}\t"
                            f"{','.join(map(str, it['carried'])) or '-'}")
    write_text(out_dir / "grammars.tsv", "\n".join(rows) + "\n")
    return summary


def grammar_run(out_dir: str | os.PathLike, motif_db: str | os.PathLike | None = None,
                release: str = DEFAULT_RELEASE, params: GrammarConfig = GrammarConfig(),
                db: Sequence[Motif] | None = None, tparams: TomtomConfig = TomtomConfig()
                ) -> dict[int, dict]:
    """Grammar of every decoded layer of a decode output directory and the model summary
    (`db` overrides motif_db/release with motifs already loaded)."""
    db = load_motif_db(motif_db, release) if db is None else db
    out_dir = Path(out_dir)
    layers = {layer: grammar_layer(runfolder.layer_dir(out_dir, layer), db, params, tparams)
              for layer in decoded_layers(out_dir)}
    write_summary(out_dir, layers, params)
    return layers
