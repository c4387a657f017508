"""`nmjax space`: the planted CTCF-6N-CEBPB of the bundled example peaks at gap 6."""
from __future__ import annotations

import json

import numpy as np
import pytest

from nmjax.cli import main
from nmjax.errors import NmjaxError
from nmjax.motifdb import jaspar_motif
from nmjax.spacing import arrangements, dinucleotide_shuffle, spacing_scan

from simulated_genome import simulated_sequences, write_records

CTCF, CEBPB = "MA0139.2", "MA0466.4"
GAPS = range(0, 21)


@pytest.fixture(scope="module")
def net(example_net):
    return example_net


@pytest.fixture(scope="module")
def fasta(tmp_path_factory):
    return write_records(tmp_path_factory.mktemp("seqs") / "records.fa",
                         simulated_sequences(60), soft_masked=0)


@pytest.fixture(scope="module")
def layer5(net, fasta):
    return spacing_scan(net, jaspar_motif(CTCF), jaspar_motif(CEBPB), 5, GAPS, samples=200,
                        fasta=fasta)


def _pairs(x):
    return np.bincount(x[:-1] * 4 + x[1:], minlength=16)


def test_dinucleotide_shuffle_keeps_dinucleotides_and_ends():
    rng = np.random.default_rng(1)
    for length in (3, 10, 82, 300):
        seq = rng.choice(4, length, p=[0.1, 0.4, 0.4, 0.1])
        out = dinucleotide_shuffle(seq, rng)
        np.testing.assert_array_equal(_pairs(out), _pairs(seq))
        assert out[0] == seq[0] and out[-1] == seq[-1]
    seq = rng.integers(0, 4, 200)
    assert (dinucleotide_shuffle(seq, rng) != seq).mean() > 0.3


def test_all_eight_arrangements():
    labels = [label for label, _ in arrangements("A", "B")]
    assert len(set(labels)) == 8 and "A+ B-" in labels and "B- A-" in labels


def test_ctcf_cebpb_peaks_at_gap_6_for_the_best_layer5_neuron(layer5):
    """The neuron ranked first by the scan's own contrast, on both backgrounds."""
    for background in ("uniform", "shuffled"):
        best = next(r for r in layer5.summary() if r["background"] == background)
        assert best["peak_gap"] == 6, best
        b = layer5.backgrounds.index(background)
        a = layer5.arrangements.index(best["arrangement"])
        curve = layer5.mean[b, a, :, layer5.responses.index(best["response"])]
        others = np.delete(curve, GAPS.index(6))
        assert curve[GAPS.index(6)] - others.max() > 0.1 * best["contrast"], curve


def test_other_neurons_and_random_pairs_are_not_gap_6_by_construction(net, layer5):
    """A uniform 'motif' pair gives no neuron a peak anywhere near the CTCF/CEBPB contrast."""
    flat = jaspar_motif(CTCF)
    flat = type(flat)("flat", np.full_like(flat.ppm, 0.25))
    control = spacing_scan(net, flat, flat, 5, GAPS, samples=200)
    best = max(r["contrast"] for r in layer5.summary() if r["background"] == "uniform")
    assert max(r["contrast"] for r in control.summary()) < 0.25 * best


def test_model_output_and_cli_files(net, tmp_path, capsys):
    out = tmp_path / "space"
    assert main(["space", "--motifs", f"{CTCF},{CEBPB}", "--output", "--gaps", "0-12",
                 "--samples", "100", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "output 0: peak at gap 6" in printed      # output 0 is the CTCF-6N-CEBPB task
    data = json.loads((out / "output" / "spacing" / "CTCF-CEBPB.json").read_text())
    assert data["summary"][0]["response"] == 0 and data["summary"][0]["peak_gap"] == 6
    lines = (out / "output" / "spacing" / "CTCF-CEBPB.tsv").read_text().splitlines()
    assert lines[0] == "background\tarrangement\tgap\toutput\tmean\tsem"
    assert len(lines) == 1 + 8 * 13 * len(data["responses"])
    assert list((out / "output" / "spacing").glob("CTCF-CEBPB_output0_uniform.svg"))


def test_bad_spacing_input(net, capsys):
    with pytest.raises(NmjaxError, match="needs 65 bp; layer 4's receptive field is 42 bp"):
        spacing_scan(net, jaspar_motif(CTCF), jaspar_motif(CEBPB), 4, range(0, 41))
    assert main(["space", "--motifs", CTCF, "--layer", "5"]) == 2
    assert "two motifs" in capsys.readouterr().err
