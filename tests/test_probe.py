"""In-silico motif insertion (`nmjax probe`) on the bundled example."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nmjax
from nmjax.meme import Motif
from nmjax.motifdb import jaspar_motif
from nmjax.probe import insert_instances, probe

REPO = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def net(example_net):
    return example_net


def test_instances_are_placed_on_either_strand():
    rng = np.random.default_rng(0)
    word = np.array([0, 0, 1, 2, 2, 3])  # AACGGT; reverse complement ACCGTT
    ppm = np.eye(4)[word]
    out = insert_instances(rng, np.full((400, 20), 3), ppm)
    text = ["".join("ACGT"[b] for b in row) for row in out]
    plus = sum("AACGGT" in t for t in text)
    minus = sum("ACCGTT" in t for t in text)
    assert plus + minus == 400 and 150 < plus < 250
    assert all(t.count("T") >= 20 - 6 for t in text)  # only the 6 motif columns changed


def test_planted_motif_drives_the_neuron_that_decodes_it(net):
    """MEF2C is planted in the example; a layer-3 neuron gains > 1 from it, a uniform 'motif'
    of the same width moves no neuron by more than a tenth of that."""
    mef2c = jaspar_motif("MA0497.2")
    uniform = Motif("uniform", np.full_like(mef2c.ppm, 0.25), 100)
    rows = probe(net, [mef2c, uniform], layers=[3], samples=300)
    gain = {m: max(r.gain for r in rows if r.motif == m) for m in ("MA0497.2", "uniform")}
    assert gain["MA0497.2"] > 1.0
    assert abs(gain["uniform"]) < 0.1 * gain["MA0497.2"]
    assert len(rows) == 2 * net.channels(3)


def test_decoded_act_comparison(net, tmp_path):
    mef2c = jaspar_motif("MA0497.2")
    rows = probe(net, [mef2c], layers=[3], samples=200)
    best = max(rows, key=lambda r: r.gain)
    layer = tmp_path / "layer3"
    layer.mkdir()
    acts = {n: (best.f_max / 2 if n == best.neuron else 1e3) for n in range(net.channels(3))}
    (layer / "neurons.tsv").write_text("neuron\tsubset\tn\tact\tconact\tconsensus\n" + "".join(
        f"{n}\t0\t10\t{a}\t{a}\tACGT\n" for n, a in acts.items()))
    flagged = [r.neuron for r in probe(net, [mef2c], layers=[3], samples=200, decode_dir=tmp_path)
               if r.exceeds]
    assert flagged == [best.neuron]


def test_motif_longer_than_every_field_is_refused(net):
    long = Motif("long", np.full((90, 4), 0.25), 10)  # the example's deepest field is 82 bp
    with pytest.raises(nmjax.NmjaxError, match="receptive field"):
        probe(net, [long])


def test_cli_bad_input_exits_2_and_writes_nothing(tmp_path):
    out = tmp_path / "probe.tsv"
    for args in (["--layers", "3"], ["--motifs", "NO_SUCH_TF"], ["--motifs", "MEF2C", "--layers", "9"]):
        res = subprocess.run([sys.executable, "-m", "nmjax", "probe", *args, "--out", str(out)],
                             cwd=REPO, capture_output=True, text=True)
        assert res.returncode == 2, res.stderr
        assert "nmjax: error:" in res.stderr
    assert list(tmp_path.iterdir()) == []
