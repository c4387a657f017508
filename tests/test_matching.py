"""Tomtom matching against JASPAR: known Tomtom behaviour, E/q-values, matches.tsv."""
from __future__ import annotations

import numpy as np
import pytest

from fake_decode import write_fake_decode
from nmjax.errors import NmjaxError
from nmjax.matching import (TomtomConfig, benjamini_hochberg, compare, match_run, read_matches,
                            tomtom, with_pseudocount)
from nmjax.meme import Motif
from nmjax.motifdb import jaspar_motif, jaspar_motifs, load_motif_db


@pytest.fixture(scope="module")
def db():
    return load_motif_db()


@pytest.fixture(scope="module")
def ctcf():
    return jaspar_motif("MA0139.2")


def best(matches, query):
    return min((m for m in matches if m.query == query), key=lambda m: m.p_value)


def test_identical_motif_is_best_at_offset_zero(db, ctcf):
    matches = compare([Motif("q", ctcf.ppm, ctcf.nsites)], db)
    m = best(matches, "q")
    assert (m.target, m.target_name, m.offset, m.orientation) == ("MA0139.2", "CTCF", 0, "+")
    assert m.overlap == len(ctcf.ppm) and m.q_value < 1e-10
    assert m.e_value == pytest.approx(m.p_value * len(db))


def test_reverse_complement_matches_on_minus_strand(db, ctcf):
    rc = Motif("rc", ctcf.ppm[::-1, ::-1], ctcf.nsites)
    m = best(compare([rc], db), "rc")
    assert (m.target, m.offset, m.orientation) == ("MA0139.2", 0, "-")


def test_offset_of_an_embedded_motif(db, ctcf):
    rng = np.random.default_rng(3)
    flank = rng.dirichlet(np.full(4, 30.0), size=10)
    q = Motif("embedded", np.concatenate([flank[:5], ctcf.ppm, flank[5:]]), 500)
    m = best(compare([q], db), "embedded")
    # Tomtom's convention: query column i aligns with target column i + offset.
    assert (m.target, m.offset, m.orientation, m.overlap) == ("MA0139.2", -5, "+", 15)


def test_shuffled_random_and_flat_motifs_do_not_match(db):
    rng = np.random.default_rng(0)
    queries = []
    for matrix_id in ("MA0139.2", "MA0466.4", "MA1528.2", "MA0035.5", "MA0080.7"):
        m = jaspar_motif(matrix_id)
        queries += [Motif(f"{matrix_id}_shuffled{k}", m.ppm[rng.permutation(len(m.ppm))], m.nsites)
                    for k in range(2)]
    queries += [Motif(f"random{k}", rng.dirichlet(np.ones(4), size=12), 20) for k in range(5)]
    queries += [Motif(f"flat{k}", rng.dirichlet(np.full(4, 10.0), size=12), 20) for k in range(5)]
    res = tomtom(queries, db)
    matched = [q.name for q, row in zip(queries, res.q_value) if row.min() < 0.01]
    assert matched == []


def test_euclidean_distance_option(db, ctcf):
    params = TomtomConfig(distance="euclidean")
    m = best(compare([Motif("q", ctcf.ppm[::-1, ::-1], ctcf.nsites)], db, params), "q")
    assert (m.target, m.offset, m.orientation) == ("MA0139.2", 0, "-")
    with pytest.raises(NmjaxError, match="unknown Tomtom distance"):
        tomtom([ctcf], db, params=TomtomConfig(distance="pearson"))


def test_benjamini_hochberg_by_hand():
    q = benjamini_hochberg(np.array([[0.01, 0.04, 0.03, 0.5]]))
    np.testing.assert_allclose(q, [[0.04, 0.04 / 0.75, 0.04 / 0.75, 0.5]])


def test_meme_pseudocount():
    p = with_pseudocount(Motif("x", np.array([[1.0, 0, 0, 0]]), nsites=20), 0.1)
    np.testing.assert_allclose(p, [[(20 + 0.025) / 20.1, 0.025 / 20.1, 0.025 / 20.1, 0.025 / 20.1]])


def test_match_run_writes_and_reads_back(tmp_path, db):
    out = write_fake_decode(tmp_path / "run")
    per_layer = match_run(out)
    assert set(per_layer) == {1, 2}
    back = read_matches(out / "layer2" / "matches.tsv")
    assert len(back) == len(per_layer[2]) > 0
    assert all(b.query == a.query and b.target == a.target and b.offset == a.offset
               and b.q_value == pytest.approx(a.q_value, rel=1e-3) for a, b in zip(per_layer[2], back))
    for query in {m.query for m in back if m.query.startswith("L2_N0_")}:
        assert best(back, query).target_name == "CTCF" and best(back, query).q_value < 0.01
    layer1_queries = {m.query for m in per_layer[1] if m.query.startswith("L1_N0_S0_")}
    assert len(layer1_queries) == 1 and best(per_layer[1], layer1_queries.pop()).target_name == "GATA1"
    assert not any(m.query.startswith("L2_N4_") for m in back)   # no motif: nothing to match


def test_bad_inputs_are_clear_errors(tmp_path):
    with pytest.raises(NmjaxError, match="not a directory"):
        match_run(tmp_path / "missing")
    with pytest.raises(NmjaxError, match="no layer"):
        match_run(tmp_path)
    (tmp_path / "layer1").mkdir()
    (tmp_path / "layer1" / "ppms.meme").write_text("MEME version 4\n")
    with pytest.raises(NmjaxError, match="unknown JASPAR release"):
        match_run(tmp_path, release="JASPAR1999")
    (tmp_path / "bad.tsv").write_text("a\tb\n")
    with pytest.raises(NmjaxError, match="not a matches table"):
        read_matches(tmp_path / "bad.tsv")


def test_jaspar_cache_is_an_exact_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("NMJAX_CACHE", str(tmp_path))
    from_sqlite = jaspar_motifs.__wrapped__()          # pyJASPAR; writes the cache
    assert (tmp_path / "jaspar" / "JASPAR2026_CORE_vertebrates.npz").is_file()
    from_cache = jaspar_motifs.__wrapped__()
    assert len(from_cache) == len(from_sqlite) == 1019
    assert all(a.name == b.name and a.alt_name == b.alt_name and a.nsites == b.nsites
               and np.array_equal(a.ppm, b.ppm) for a, b in zip(from_sqlite, from_cache))
