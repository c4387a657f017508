"""Grammar (dictionary, sites, gaps, syntax tree) on a decode directory with planted dimers."""
from __future__ import annotations

import json

import numpy as np
import pytest

from fake_decode import SOFT_GAPS, write_fake_decode
from nmjax.errors import NmjaxError
from nmjax.diagnose import parse_ppm_name
from nmjax.grammar import (GrammarParams, _drop_repeats, _name_match, canonical_text, grammar_run,
                           segment_regions, tied_names)
from nmjax.matching import TomtomResult, benjamini_hochberg
from nmjax.motifdb import jaspar_motif, load_motif_db


@pytest.fixture(scope="module")
def db():
    return load_motif_db()


@pytest.fixture(scope="module")
def run(tmp_path_factory, db):
    out = write_fake_decode(tmp_path_factory.mktemp("decode"))
    return out, grammar_run(out, db=db)


def test_single_motif_neuron(run):
    _, result = run
    g = result[2]["neurons"]["0"]
    assert g["text"] == "CTCF"
    assert [d["match"]["target"] for d in g["dictionary"]] == ["MA0139.2"]
    assert result[1]["neurons"]["0"]["text"] == "GATA1"


def test_hard_dimer_gap_is_exact(run):
    _, result = run
    g = result[2]["neurons"]["1"]
    assert g["text"] == "CTCF-6N-CEBPB"
    (order,) = g["orders"]
    assert order["subsets"] == [0, 1, 2, 3, 4]
    assert order["gaps"] == [{"min": 6, "max": 6, "values": {6: 5}}]
    # sites are the planted JASPAR spans: CTCF (15 bp) at 3, 7, ..., CEBPB (10 bp) 6 bp later
    for subset, start in zip(range(5), (3, 7, 11, 15, 19)):
        sites = g["sites"][str(subset)]
        assert [(s["start"], s["end"]) for s in sites] == [(start, start + 15), (start + 21, start + 31)]


def test_soft_dimer_range_covers_planted_gaps(run):
    _, result = run
    g = result[2]["neurons"]["2"]
    assert g["text"] == f"NFIX-[{min(SOFT_GAPS)}-{max(SOFT_GAPS)}N]-NFIX"
    (order,) = g["orders"]
    assert order["gaps"][0]["values"] == {gap: 1 for gap in SOFT_GAPS}
    tree = g["tree"]
    assert len(tree) == 1 and tree[0]["name"] == "NFIX" and tree[0]["subsets"] == list(range(6))
    (child,) = tree[0]["children"]
    assert child["gaps"] == {str(gap): 1 for gap in SOFT_GAPS}


def test_dead_and_motifless_neurons(run):
    out, result = run
    neurons = result[2]["neurons"]
    assert "3" not in neurons                       # dead: n = 0, nothing to segment
    assert neurons["4"]["text"] == "" and neurons["4"]["dictionary"] == []
    lines = (out / "layer2" / "grammar.tsv").read_text().splitlines()
    assert lines == ["neuron\tgrammar", "0\tCTCF", "1\tCTCF-6N-CEBPB", "2\tNFIX-[10-20N]-NFIX", "4\t-"]
    on_disk = json.loads((out / "layer2" / "grammar.json").read_text())
    assert on_disk["neurons"]["1"]["text"] == "CTCF-6N-CEBPB"


def test_deterministic(run, db, tmp_path):
    out, result = run
    again = grammar_run(write_fake_decode(tmp_path / "again"), db=db)
    assert json.dumps(again[2]) == json.dumps(result[2])


def test_segment_regions_running_mean_and_flank():
    ppm = np.full((30, 4), 0.25)
    ppm[10:16] = [0.97, 0.01, 0.01, 0.01]            # 6 bp of ~1.8 bits
    ppm[25] = [0.8, 0.2 / 3, 0.2 / 3, 0.2 / 3]     # a lone 0.96-bit base: running mean 0.32
    # running mean > 0.557 bits over 10..15 and also 9 and 16 (mean 0.58), widened by 1 bp
    assert segment_regions(ppm, 10_000) == [(8, 18)]
    # the paper's literal rule (1 bit, no flank): the two edge means of 0.58 bits drop out
    assert segment_regions(ppm, 10_000, GrammarParams(ic_threshold=1.0, flank=0)) == [(10, 16)]


def test_bad_motif_name():
    with pytest.raises(NmjaxError, match="L<layer>_N<neuron>_S<subset>"):
        parse_ppm_name("neuron3")


def composite_dimer(rng: np.random.Generator) -> np.ndarray:
    """CTCF (MA0139.2), 6 spacer columns of low but non-zero IC (0.64 bits: one random base at
    0.7), CEBPB (MA0466.4): one 31-bp segment, as the example model's layer-5 neurons learn it."""
    spacer = np.full((6, 4), 0.1)
    spacer[np.arange(6), rng.integers(0, 4, 6)] = 0.7
    return np.concatenate([jaspar_motif("MA0139.2").ppm, spacer, jaspar_motif("MA0466.4").ppm])


@pytest.fixture(scope="module")
def composite_run(tmp_path_factory, db):
    dimer = composite_dimer(np.random.default_rng(7))
    plan = {1: (64, {0: [[("dimer", s)] for s in (4, 9, 14, 19, 24)],
                     1: [[("rc", s)] for s in (3, 8, 13, 18, 23, 28)]})}
    out = write_fake_decode(tmp_path_factory.mktemp("composite"), plan=plan,
                            matrices={"dimer": dimer, "rc": dimer[::-1, ::-1]})
    return grammar_run(out, db=db)[1]["neurons"]


def test_composite_segment_one_dictionary_motif(composite_run):
    for neuron in ("0", "1"):
        g = composite_run[neuron]
        assert segment_regions(composite_dimer(np.random.default_rng(7)), 2000) == [(0, 31)]
        (entry,) = g["dictionary"]
        assert entry["length"] >= 31
        assert entry["match"]["target_name"] == "CTCF"   # the whole segment: one name only
        assert [p["target"] for p in entry["parts"]] == (
            ["MA0139.2", "MA0466.4"] if neuron == "0" else ["MA0466.4", "MA0139.2"])


@pytest.mark.parametrize("neuron, starts, strands", [
    ("0", (4, 9, 14, 19, 24), ["+", "."]),     # CTCF(+) 6N CEBPB, as planted
    ("1", (3, 8, 13, 18, 23, 28), [".", "-"])])  # its reverse complement: CEBPB 6N CTCF(-)
def test_composite_dimer_text_and_exact_gap(composite_run, neuron, starts, strands):
    g = composite_run[neuron]
    assert g["text"] == "CTCF-6N-CEBPB"
    (order,) = g["orders"]
    assert order["gaps"] == [{"min": 6, "max": 6, "values": {6: len(starts)}}]
    assert order["reverse_complement"] is (neuron == "1") and order["strands"] == ["+", "."]
    first = (15, 10) if neuron == "0" else (10, 15)
    for subset, start in enumerate(starts):
        sites = g["sites"][str(subset)]
        assert [(s["start"], s["end"], s["strand"]) for s in sites] == [
            (start, start + first[0], strands[0]),
            (start + first[0] + 6, start + first[0] + 6 + first[1], strands[1])]


def test_single_long_motif_is_not_split(run):
    _, result = run
    for neuron in ("0", "2"):      # CTCF alone; NFIX dimer with separate segments
        assert all(not d["parts"] for d in result[2]["neurons"][neuron]["dictionary"])


def test_paralog_ties_named_together():
    params = GrammarParams()
    pairs = [(1.7e-8, "CEBPE"), (2.0e-8, "CEBPB"), (3.3e-8, "CEBPG"), (3.5e-8, "CEBPA"),
             (1.2e-6, "CTCF")]
    # within a factor 2 of the best p, at most 3 names, written alphabetically
    assert tied_names(pairs, params) == ["CEBPB", "CEBPE", "CEBPG"]
    assert tied_names(pairs[:2] + pairs[4:], params) == ["CEBPB", "CEBPE"]
    assert tied_names([(1e-8, "Spi1"), (2.1e-8, "SPIB")], params) == ["Spi1"]
    assert tied_names([(1e-8, "Spi1"), (1.5e-8, "SPI1")], params) == ["Spi1"]   # one TF
    assert tied_names(pairs, GrammarParams(max_names=1)) == ["CEBPE"]


def test_paralog_tie_names_match_and_keeps_best_target():
    """A Tomtom row where CEBPE is best and CEBPB 1.2x worse (as for layer-4 neuron 20 of the
    example): the match is named CEBPB/CEBPE, the single best matrix stays recorded."""
    targets = [jaspar_motif(i) for i in ("MA0837.3", "MA0466.4", "MA0139.2", "MA0102.5")]
    p = np.array([[1.7e-8, 2.0e-8, 1e-3, 8e-8]])
    res = TomtomResult(p, p * 4, benjamini_hochberg(p), np.zeros((1, 4), int),
                       np.zeros((1, 4), bool), np.full((1, 4), 10))
    match = _name_match(res, 0, 10, targets, GrammarParams())
    assert match["name"] == "CEBPB/CEBPE" and match["names"] == ["CEBPB", "CEBPE"]
    best = (match["target"], match["target_name"], match["p_value"])
    assert best == ("MA0837.3", "CEBPE", 1.7e-8)
    assert match["strand"] == "."                     # CEBPE's matrix is palindromic
    assert _name_match(res, 0, 10, targets, GrammarParams(tie_factor=1.1))["name"] == "CEBPE"


def test_canonical_text_orientation():
    # more '+' strands wins; reversing swaps strands and reverses gaps
    dimer = ("CTCF-6N-CEBPB", ["+", "."])
    assert canonical_text(["CEBPB", "CTCF"], [".", "-"], ["6N"]) == (*dimer, True)
    assert canonical_text(["CTCF", "CEBPB"], ["+", "."], ["6N"]) == (*dimer, False)
    assert canonical_text(["A", "B", "C"], ["-", "-", "+"], ["2N", "[3-5N]"]) == (
        "C-[3-5N]-B-2N-A", ["-", "+", "+"], True)
    # a tie ('+' count equal) takes the alphabetically smaller text, whichever strand is read
    assert canonical_text(["NFIX", "CTCF"], [".", "."], ["4N"])[0] == "CTCF-4N-NFIX"
    assert canonical_text(["CTCF", "NFIX"], [".", "."], ["4N"])[0] == "CTCF-4N-NFIX"


def test_overlapping_sites_of_one_tf_count_once():
    names = {"D1.1": "CTCF", "D1.2": "CEBPB", "D2": "CTCF", "D3": "NFIX"}
    sites = [{"motif": "D1.1", "start": 0, "end": 15}, {"motif": "D2", "start": 2, "end": 17},
             {"motif": "D3", "start": 5, "end": 19}, {"motif": "D1.2", "start": 21, "end": 31},
             {"motif": "D2", "start": 23, "end": 38}]
    # D2 at 2-17 lies 13/15 inside the CTCF site at 0-15; the other NFIX and CTCF sites stay
    assert [s["motif"] for s in _drop_repeats(sites, names)] == ["D1.1", "D3", "D1.2", "D2"]
