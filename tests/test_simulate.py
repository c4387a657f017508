"""The simulator writes motifs where and how its labels and metadata say, deterministically."""
import json

import numpy as np
import pytest

from nmjax.errors import NmjaxError
from nmjax.meme import ALPHABET, Motif, write_meme
from nmjax.simulate import (SimulationConfig, TaskSpec, load_config, planted_motifs,
                            resolve_motifs, simulate, stream)

TASKS = (
    TaskSpec("hard", "dimer", ("MA0139.2", "MA0466.4"), (6, 6), (0, 20), 0.35, 0.35),
    TaskSpec("soft", "dimer", ("MA1528.2", "MA1528.2"), (10, 20), (0, 30), 0.35, 0.35),
    TaskSpec("single", "single", ("MA0080.7",), positive_rate=0.4),
    TaskSpec("both", "cooccurrence", ("MA1494.2", "MA0038.3"), positive_rate=0.35,
             decoy_rate=0.35),
)
CONFIG = SimulationConfig(TASKS, length=180, n_train=300, n_valid=50, n_test=50, seed=7)
_RC = str.maketrans("ACGT", "TGCA")


@pytest.fixture(scope="module")
def motifs():
    return resolve_motifs(CONFIG)


@pytest.fixture(scope="module")
def data(motifs):
    return simulate(CONFIG, "train", motifs)


def _decode(onehot_row):
    assert (onehot_row.sum(1) == 1).all(), "every position is exactly one base"
    return "".join(ALPHABET[i] for i in onehot_row.argmax(1))


def test_sites_hold_the_recorded_bases_on_their_strand(data, motifs):
    for row, events in zip(data.onehot, data.events):
        seq = _decode(row)
        used = np.zeros(len(seq), int)
        for event in events:
            for site in event.sites:
                ppm = motifs[site.motif].ppm
                assert len(site.bases) == len(ppm)
                read = seq[site.start:site.end]
                assert (read if site.strand == "+" else read.translate(_RC)[::-1]) == site.bases
                # every base is one the PFM can emit: a draw from it, not background
                assert all(ppm[i, ALPHABET.index(b)] > 0 for i, b in enumerate(site.bases))
                used[site.start:site.end] += 1
        assert used.max() <= 1, "planted sites never overlap"


def test_dimer_gaps_strands_and_decoys(data):
    seen = {("hard", True): 0, ("hard", False): 0, ("soft", True): 0, ("soft", False): 0}
    spec = {t.name: t for t in TASKS}
    for events in data.events:
        for e in (e for e in events if spec[e.task].rule == "dimer"):
            a, b = e.sites
            assert a.strand == b.strand, "a dimer is written as one unit"
            measured = b.start - a.end if a.strand == "+" else a.start - b.end
            assert measured == e.gap
            lo, hi = spec[e.task].gap
            assert e.positive == (lo <= e.gap <= hi)
            if not e.positive:
                assert spec[e.task].decoy_gap[0] <= e.gap <= spec[e.task].decoy_gap[1]
            seen[(e.task, e.positive)] += 1
    assert min(seen.values()) >= 30, seen  # both kinds of event occur, decoys included
    strands = {s.strand for ev in data.events for e in ev for s in e.sites}
    assert strands == {"+", "-"}


def test_labels_follow_the_rules(data):
    spec = {t.name: t for t in TASKS}
    for labels, events in zip(data.labels, data.events):
        for t, task in enumerate(TASKS):
            mine = [e for e in events if e.task == task.name]
            assert len(mine) <= 1
            if task.rule == "single":
                want = len(mine) == 1
            elif task.rule == "cooccurrence":
                want = bool(mine) and {s.motif for s in mine[0].sites} == set(task.motifs)
            else:
                want = bool(mine) and spec[task.name].gap[0] <= mine[0].gap <= task.gap[1]
            assert labels[t] == want
    rates = data.labels.mean(0)
    assert np.all(np.abs(rates - np.array([0.35, 0.35, 0.4, 0.35])) < 0.1), rates


def test_deterministic_per_seed_and_independent_of_batch_size(data, motifs):
    again = list(stream(CONFIG, "train", batch_size=37, motifs=motifs))
    assert np.array_equal(np.concatenate([b.onehot for b in again]), data.onehot)
    assert sum((b.events for b in again), ()) == data.events
    other = simulate(SimulationConfig(TASKS, length=180, n_train=300, seed=8), "train", motifs)
    assert not np.array_equal(other.onehot, data.onehot)
    assert not np.array_equal(simulate(CONFIG, "valid", motifs).onehot, data.onehot[:50])


def test_gc_background():
    idle = (TaskSpec("none", "single", ("MA0080.7",), positive_rate=0.0),)
    batch = simulate(SimulationConfig(idle, length=500, n_test=200, gc=0.7), "test")
    gc = batch.onehot[..., 1:3].sum() / (200 * 500)
    assert abs(gc - 0.7) < 0.01
    assert batch.labels.sum() == 0 and all(ev == () for ev in batch.events)


def test_motifs_from_a_meme_file_and_a_toml_config(tmp_path):
    ppm = np.full((8, 4), 0.02) + np.eye(4)[[0, 1, 2, 3, 3, 2, 1, 0]] * 0.92
    write_meme(tmp_path / "mine.meme", [Motif("mine", ppm)])
    (tmp_path / "cfg.toml").write_text(
        'length = 40\nn_train = 20\nmotif_file = "mine.meme"\nseed = 3\n'
        '[[tasks]]\nname = "t"\nrule = "single"\nmotifs = ["mine"]\npositive_rate = 1.0\n')
    config = load_config(tmp_path / "cfg.toml")
    batch = simulate(config, "train")
    assert batch.labels.all() and all(len(ev) == 1 for ev in batch.events)
    assert [m.name for m in planted_motifs(config)] == ["mine"]


def test_bad_configs_are_named(tmp_path):
    with pytest.raises(NmjaxError, match="used by tasks"):
        SimulationConfig((TASKS[2], TaskSpec("again", "single", ("MA0080.7",)))).validate()
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"tasks": [{"name": "x", "rule": "trimer", "motifs": ["A"]}]}))
    with pytest.raises(NmjaxError, match=r"bad.json: task 'x': unknown rule 'trimer'"):
        load_config(path)
    path.write_text(json.dumps({"tasks": [{"name": "x", "rule": "dimer", "motifs": ["A", "B"],
                                           "gap": [3, 3], "decoy_gap": [3, 3]}]}))
    with pytest.raises(NmjaxError, match="no gap outside"):
        load_config(path)
    with pytest.raises(NmjaxError, match="no JASPAR"):
        resolve_motifs(SimulationConfig((TaskSpec("x", "single", ("NOT_A_TF",)),)))
