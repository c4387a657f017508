"""Grammar: dictionary of hard motifs and syntax lines, on synthetic decoupled PPMs built from
JASPAR matrices (the exact line is asserted), and the layer and model summary on a decode
directory."""
from __future__ import annotations

import json

import numpy as np
import pytest

from fake_decode import SOFT_GAPS, planted_ppm, write_fake_decode
from nmjax.clusters import DictionaryConfig, tied_names
from nmjax.errors import NmjaxError
from nmjax.frames import DecodedPPM
from nmjax.grammar import grammar_run, layer_summary, neuron_grammar
from nmjax.motifdb import jaspar_motif, load_motif_db
from nmjax.motifs import SEGMENT_RULES, laplace, segment_ppm
from nmjax.syntax import canonical, gap_interval, gap_text

CTCF, CEBPB, NFIX, SPI1, GATA1 = "MA0139.2", "MA0466.4", "MA1528.2", "MA0080.7", "MA0035.5"
N = 3000


@pytest.fixture(scope="module")
def db():
    return load_motif_db()


def rc(sites: list[tuple[str, int]], matrices: dict, length: int) -> list[tuple[str, int]]:
    """The same sites on the other strand of a window of `length` (matrices reverse-complemented)."""
    out = []
    for m, start in sites:
        width = len(matrices.get(m, jaspar_motif(m.removesuffix("~")).ppm))
        out.append((m + "~" if not m.endswith("~") else m[:-1], length - start - width))
    return out


def neuron(plan: list[list[tuple[str, int]]], length: int, seed: int = 0,
           acts: list[float] | None = None) -> list[DecodedPPM]:
    """Decoupled PPMs (smoothed as in ppms.meme) with the given matrices planted; a name
    ending in ~ is the reverse complement of that JASPAR matrix."""
    rng = np.random.default_rng(seed)
    matrices = {}
    for sites in plan:
        for m, _ in sites:
            base = jaspar_motif(m.removesuffix("~")).ppm
            matrices[m] = base[::-1, ::-1] if m.endswith("~") else base
    out = []
    for s, sites in enumerate(plan):
        raw = planted_ppm(length, sites, rng, matrices)
        out.append(DecodedPPM(s, laplace(raw, N, 80.0), N, (acts or [10.0] * len(plan))[s]))
    return out


@pytest.fixture(scope="module")
def hard(db):
    plan = [[(CTCF, s), (CEBPB, s + 15 + 6)] for s in (3, 7, 11, 15, 19, 23)]
    return neuron(plan, 60), db


def test_hard_gap(hard):
    ppms, db = hard
    g = neuron_grammar(ppms, db, "reference")
    assert g["text"] == "CTCF-6N-CEBPB"
    assert g["line"]["support"] == g["line"]["of"] == 6 and g["line"]["share"] == pytest.approx(1)
    # one dictionary entry per hard motif
    assert sorted(d["name"] for d in g["dictionary"]) == ["CEBPB", "CTCF"]
    # sites are the JASPAR spans: CTCF (15 bp) then 6 bp then CEBPB (10 bp)
    for subset, start in enumerate((3, 7, 11, 15, 19, 23)):
        spans = [(s["start"], s["end"]) for s in g["sites"][str(subset)]]
        assert spans == [(start, start + 15), (start + 21, start + 31)]


def test_reverse_complement_copies_read_the_same(hard, db):
    ppms, _ = hard
    plan = [[(CTCF, s), (CEBPB, s + 21)] for s in (3, 7, 11)]
    flipped = [rc(p, {}, 60) for p in [[(CTCF, s), (CEBPB, s + 21)] for s in (15, 19, 23)]]
    g = neuron_grammar(neuron(plan + flipped, 60, seed=1), db, "reference")
    assert g["text"] == "CTCF-6N-CEBPB" and g["line"]["of"] == 6
    assert [d["name"] for d in g["dictionary"]].count("CTCF") == 1
    strands = {s["strand"] for subset in ("3", "4", "5") for s in g["sites"][subset]
               if s["name"] == "CTCF"}
    assert strands == {"-"}                    # the copies read CTCF on the other strand


def test_soft_range_ignores_one_outlier(db):
    gaps = list(SOFT_GAPS) + [36]
    plan = [[(NFIX, 2), (NFIX, 2 + 14 + g)] for g in gaps]
    g = neuron_grammar(neuron(plan, 70, seed=2), db, "reference")
    assert g["text"] == "NFIX-[10-20N]-NFIX"
    assert (g["line"]["support"], g["line"]["of"]) == (6, 6)
    assert g["line"]["gaps"][0]["values"] == {str(v): 1 for v in SOFT_GAPS}
    # the outlier is an order of its own, not a wider range
    outlier = [o for o in g["orders"] if o["text"] == "NFIX-36N-NFIX"]
    assert len(outlier) == 1 and outlier[0]["share"] == pytest.approx(1 / 7)


def test_dimer_is_the_line_when_its_parts_occur_mostly_in_it(db):
    # CEBPB alone in 7 PPMs, CTCF-6N-CEBPB in 4 (36 % of the weight): wherever CTCF occurs it
    # is 6 bp before CEBPB, so the dimer is the neuron's grammar though CEBPB is held by all
    plan = [[(CTCF, s), (CEBPB, s + 21)] for s in (3, 9, 15, 21)]
    plan += [[(CEBPB, s)] for s in (5, 12, 19, 26, 33, 40, 47)]
    g = neuron_grammar(neuron(plan, 60, seed=6), db, "reference")
    assert g["text"] == "CTCF-6N-CEBPB" and g["line"]["share"] == pytest.approx(4 / 11)


def test_pair_is_not_the_line_when_its_parts_mostly_occur_apart(db):
    # CTCF-6N-CEBPB in 4 PPMs, CTCF alone in 6 and CEBPB alone in 6: the pair holds a quarter
    # of the weight but under half of either part's, so the line is a single motif
    plan = [[(CTCF, s), (CEBPB, s + 21)] for s in (3, 9, 15, 21)]
    plan += [[(CTCF, s)] for s in (2, 8, 14, 20, 26, 32)]
    plan += [[(CEBPB, s)] for s in (5, 12, 19, 26, 33, 40)]
    g = neuron_grammar(neuron(plan, 60, seed=7), db, "reference")
    assert g["text"] in ("CTCF", "CEBPB") and g["line"]["share"] == pytest.approx(10 / 16)
    assert any(o["text"] == "CTCF-6N-CEBPB" for o in g["orders"])


def test_one_outlier_subset_of_a_hard_gap_does_not_soften_it(db):
    plan = [[(CTCF, s), (CEBPB, s + 21)] for s in (3, 6, 9, 12, 15, 18, 21, 24)]
    plan.append([(CTCF, 10), (CEBPB, 10 + 15 + 7)])          # one subset at 7 bp
    g = neuron_grammar(neuron(plan, 60, seed=5), db, "reference")
    assert g["text"] == "CTCF-6N-CEBPB" and (g["line"]["support"], g["line"]["of"]) == (8, 9)


def test_overlapping_sites_print_as_an_overlap(db):
    spi1 = len(jaspar_motif(SPI1).ppm)
    plan = [[(SPI1, s), (GATA1, s + spi1 - 2)] for s in (4, 8, 12, 16)]
    g = neuron_grammar(neuron(plan, 50, seed=3), db, "reference")
    assert "-(overlap 2bp)-" in g["text"] and "--" not in g["text"]
    assert sorted(g["line"]["motifs"]) == sorted(["Spi1", "GATA1"])


def test_novel_motif_is_named_by_its_consensus(db):
    ppm = np.full((40, 4), 0.25)
    novel = "ACGTTAGCATCG"                       # no JASPAR vertebrate matrix looks like it
    for i, b in enumerate(novel):
        ppm[10 + i] = 0.02
        ppm[10 + i, "ACGT".index(b)] = 0.94
    ppms = [DecodedPPM(s, laplace(np.roll(ppm, s, 0), N, 80.0), N, 10.0) for s in range(3)]
    g = neuron_grammar(ppms, db, "reference")
    assert g["dictionary"] and all(d["match"] is None for d in g["dictionary"])
    assert g["text"] == "novel:" + novel


def test_motifless_neuron_has_no_line(db):
    flat = [DecodedPPM(0, np.full((30, 4), 0.25), N, 5.0)]
    g = neuron_grammar(flat, db, "reference")
    assert g["text"] == "" and g["dictionary"] == [] and g["line"] is None


def test_both_segmentation_rules_read_the_hard_dimer(hard):
    ppms, db = hard
    assert neuron_grammar(ppms, db, "paper")["text"] == "CTCF-6N-CEBPB"
    with pytest.raises(NmjaxError, match="segmentation rule"):
        neuron_grammar(ppms, db, "nonsense")


def test_segment_rules():
    ppm = np.full((30, 4), 0.25)
    ppm[10:16] = [0.97, 0.01, 0.01, 0.01]          # 6 bp of ~1.8 bits
    ppm[25] = [0.8, 0.2 / 3, 0.2 / 3, 0.2 / 3]     # a lone 0.96-bit base
    # reference: 3-position running mean of nat IC > 1 over 9..16, 1 bp flank each side
    assert segment_ppm(ppm, 10_000, SEGMENT_RULES["reference"]) == [(8, 18)]
    # paper: IC > 1 bit at 10..15, 3 bp each side; the lone base (< 1 bit) is no motif
    assert segment_ppm(ppm, 10_000, SEGMENT_RULES["paper"]) == [(7, 19)]


def test_gap_interval_and_text():
    assert gap_interval([6] * 9 + [7], [1.0] * 10, 1.5) == (6, 6)
    assert gap_interval([10, 12, 14, 16, 18, 20, 36], [1.0] * 7, 1.5) == (10, 20)
    assert gap_interval([10, 12, 14, 16, 18, 20, 36], [1, 1, 1, 1, 1, 1, 100], 1.5) == (36, 36)
    assert [gap_text(*x) for x in ((6, 6), (10, 20), (-2, -2), (-3, -1), (-2, 4))] == [
        "6N", "[10-20N]", "(overlap 2bp)", "(overlap 1-3bp)", "[overlap 2bp to 4N]"]


def test_canonical_orientation():
    toks, gaps, flipped = canonical([("CEBPB", "."), ("CTCF", "-")], [6])
    assert (toks, gaps, flipped) == ((("CTCF", "+"), ("CEBPB", ".")), (6,), True)
    assert canonical([("CTCF", "+"), ("CEBPB", ".")], [6])[2] is False
    assert canonical([("B", "-"), ("A", "-"), ("C", "+")], [2, 5])[:2] == (
        (("C", "-"), ("A", "+"), ("B", "+")), (5, 2))


def test_paralog_tie_is_named_once(db):
    """A decoded CEBP motif between two paralog matrices: one name in the line, both as ties."""
    mix = 0.5 * (jaspar_motif(CEBPB).ppm + jaspar_motif("MA0837.3").ppm)   # CEBPB and CEBPE
    rng = np.random.default_rng(4)
    ppms = [DecodedPPM(s, laplace(planted_ppm(40, [("mix", 5 + 4 * s)], rng, {"mix": mix}), N, 80.0),
                       N, 10.0) for s in range(4)]
    g = neuron_grammar(ppms, db, "reference")
    (entry,) = g["dictionary"]
    assert entry["name"] in ("CEBPB", "CEBPE") and {"CEBPB", "CEBPE"} <= set(entry["ties"])
    assert g["text"] == entry["name"]


def test_paralog_ties():
    pairs = [(1.7e-8, "CEBPE"), (2.0e-8, "CEBPB"), (3.3e-8, "CEBPG"), (3.5e-8, "CEBPA"),
             (1.2e-6, "CTCF")]
    assert tied_names(pairs, DictionaryConfig()) == ["CEBPE", "CEBPB", "CEBPG"]
    # relative to a given first candidate (the matrix whose frame an entry keeps)
    assert tied_names(pairs[3:4] + pairs, DictionaryConfig()) == ["CEBPA", "CEBPE", "CEBPB"]
    assert tied_names([(1e-8, "Spi1"), (1.5e-8, "SPI1")], DictionaryConfig()) == ["Spi1"]


@pytest.fixture(scope="module")
def run(tmp_path_factory, db):
    out = write_fake_decode(tmp_path_factory.mktemp("decode"))
    return out, grammar_run(out, db=db)


def test_layer_files(run):
    out, result = run
    lines = (out / "layer2" / "grammar.tsv").read_text().splitlines()
    assert lines[0] == "neuron\tgrammar\tsupport\tshare\tmotifs"
    texts = {l.split("\t")[0]: l.split("\t")[1] for l in lines[1:]}
    assert texts == {"0": "CTCF", "1": "CTCF-6N-CEBPB", "2": "NFIX-[10-20N]-NFIX", "4": "-"}
    assert "3" not in result[2]["neurons"]          # dead: nothing to read
    on_disk = json.loads((out / "layer2" / "grammar.json").read_text())
    assert on_disk["segment_rule"] == "reference"
    assert on_disk["neurons"]["1"]["line"]["text"] == "CTCF-6N-CEBPB"


def test_model_summary(run):
    out, _ = run
    summary = json.loads((out / "grammars.json").read_text())["layers"]["2"]
    assert [g["text"] for g in summary["grammars"]] == ["CTCF-6N-CEBPB", "NFIX-[10-20N]-NFIX"]
    assert summary["grammars"][0]["line"] == [1] and summary["grammars"][0]["ppm"]
    motifs = {m["name"]: m for m in summary["motifs"]}
    assert motifs["CTCF"]["carried"] == [0, 1] and motifs["CTCF"]["line"] == [0]
    rows = [r.split("\t") for r in (out / "grammars.tsv").read_text().splitlines()]
    assert rows[0][:3] == ["layer", "kind", "grammar"]
    assert ["2", "grammar", "CTCF-6N-CEBPB", "1", "1", "1", "1"] in [r[:7] for r in rows]


def test_an_order_of_other_strands_is_not_the_line():
    def order(strands, share):
        return {"motifs": ["NFIX", "NFIX"], "strands": strands, "text": "NFIX-2N-NFIX",
                "gaps": [{"lo": 2, "hi": 2, "text": "2N"}], "share": share}
    line = order(["+", "+"], 0.5)
    neurons = {"30": {"line": line, "orders": [line, order(["+", "-"], 0.3)], "dictionary": []}}
    grammars = layer_summary(json.loads(json.dumps(neurons)), 0.2)["grammars"]
    assert [(g["strands"], g["line"], g["carried"]) for g in grammars] == [
        (["+", "+"], [30], [30]), (["+", "-"], [], [30])]


def test_deterministic(run, db, tmp_path):
    _, result = run
    again = grammar_run(write_fake_decode(tmp_path / "again"), db=db)
    assert json.dumps(again[2]) == json.dumps(result[2])
