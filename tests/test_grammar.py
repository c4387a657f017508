"""Grammar (dictionary, sites, gaps, syntax tree) on a decode directory with planted dimers."""
from __future__ import annotations

import json

import numpy as np
import pytest

from fake_decode import SOFT_GAPS, write_fake_decode
from nmjax.errors import NmjaxError
from nmjax.diagnose import parse_ppm_name
from nmjax.grammar import GrammarParams, grammar_run, segment_regions
from nmjax.motifdb import load_motif_db


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
