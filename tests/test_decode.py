"""End-to-end decoding of the hand-built network: planted motifs, shifts, determinism, resume."""
import dataclasses
import errno
import filecmp
import json
import os
import shutil
from pathlib import Path

import h5py
import jax
import numpy as np
import pytest

import nmjax
from nmjax import decoder, runfolder
from nmjax.cli import main
from nmjax.config import AUTHORS_READING, DecodeConfig
from nmjax.decoder import decode, decode_neuron
from nmjax.errors import NmjaxError
from nmjax.fileio import atomic_path
from nmjax.meme import format_meme, read_meme
from nmjax.motifs import consensus
from nmjax.results import NeuronResult
from nmjax.runfolder import settings_diff
from nmjax.summarise import neuron_ratios
from toy_network import PLANTED, best_offset, planted_consensus

CONFIG = DecodeConfig(population=400, max_generations=30, neuron_batch=2, rounds=1)
LAYER_FILES = ("ppms.meme", "motifs.meme", "neurons.tsv")


@pytest.fixture(scope="module")
def run_a(net, tmp_path_factory):
    out = tmp_path_factory.mktemp("run_a")
    return out, decode(net, layers=[1, 2], out=out, config=CONFIG, progress=False)


def _same_outputs(a, b):
    for layer, neurons in ((1, range(4)), (2, range(2))):
        for name in LAYER_FILES:
            assert filecmp.cmp(a / f"layer{layer}" / name, b / f"layer{layer}" / name,
                               shallow=False), (layer, name)
        for n in neurons:
            with h5py.File(a / f"layer{layer}/samples/neuron{n}.h5") as ha, \
                    h5py.File(b / f"layer{layer}/samples/neuron{n}.h5") as hb:
                assert np.array_equal(ha["sequences"][()], hb["sequences"][()])
                assert np.array_equal(ha["f"][()], hb["f"][()])


def test_layer1_recovers_planted_motifs(run_a):
    out, results = run_a
    rows = [l.split("\t") for l in (out / "layer1/neurons.tsv").read_text().splitlines()[1:]]
    assert len(rows) == 4
    segs = read_meme(out / "layer1/motifs.meme")
    for (neuron, subset, n, act, conact, cons), matrix_id in zip(rows, PLANTED):
        want = planted_consensus(matrix_id)
        assert cons.startswith(want[:9]) and int(n) > 50
        assert float(conact) == pytest.approx(float(act), rel=1e-5)  # consensus is the best
        own = [m for m in segs if m.name.startswith(f"L1_N{neuron}_S0_")]
        assert len(own) == 1
        seg_cons = "".join("ACGT"[i] for i in consensus(own[0].ppm))
        assert want[:8] in seg_cons, (seg_cons, want)


def test_layer2_subsets_are_the_planted_motif_1bp_apart(run_a):
    out, results = run_a
    r = results[2].neurons[0]
    assert isinstance(r, NeuronResult) and r.generations > 1
    assert len(r.n) == 2 and r.n.sum() > 100
    found = sorted(best_offset(p, PLANTED[0]) for p in r.ppms)
    assert [o for o, _ in found] == [2, 3] and min(s for _, s in found) > 0.8, found
    names = [m.name for m in read_meme(out / "layer2/ppms.meme")]
    assert names[:2] == ["L2_N0_S0", "L2_N0_S1"]
    assert all(len(m.ppm) == 15 for m in read_meme(out / "layer2/ppms.meme"))
    run = json.loads((out / "run.json").read_text())
    assert run["seed"] == 0 and run["layers"]["2"]["receptive_field"] == 15
    assert run["layers"]["2"]["neurons_per_call"] == 2
    assert run["layers"]["2"]["neurons_per_compiled_program"] == 2
    assert run["layers"]["1"]["sampling"] == "enumeration"


class Killed(Exception):
    """Stands for a kill in the middle of a layer (pytest treats KeyboardInterrupt itself)."""


def test_interrupted_run_resumes_to_identical_output(net, run_a, tmp_path, monkeypatch):
    out_a, _ = run_a
    calls, finished, killed = [], [], []
    real = decoder.sample_stream

    def interrupt_after_two_neurons(net_, layer, neurons, *args):
        calls.append((layer, tuple(neurons)))
        for item in real(net_, layer, neurons, *args):
            if len(finished) == 2 and not killed:
                killed.append(True)
                raise Killed
            finished.append(item)
            yield item

    monkeypatch.setattr(decoder, "sample_stream", interrupt_after_two_neurons)
    with pytest.raises(Killed):
        decode(net, layers=[1, 2], out=tmp_path, config=CONFIG, progress=False)
    assert (tmp_path / "layer1/samples/neuron1.h5").exists()
    assert not (tmp_path / "layer1/samples/neuron2.h5").exists()
    assert not (tmp_path / "layer1/neurons.tsv").exists()
    assert not list(tmp_path.rglob("*.tmp"))
    calls.clear()
    decode(net, layers=[1, 2], out=tmp_path, config=CONFIG, progress=False)
    assert calls == [(1, (2, 3)), (2, (0, 1))]   # resumed at the first unfinished neuron
    _same_outputs(out_a, tmp_path)               # same seed, same output as run a
    calls.clear()
    decode(net, layers=[2], out=tmp_path, config=CONFIG, progress=False)
    assert calls == []                           # everything reused


def test_full_disk_during_a_layer_write_leaves_no_partial_file_and_resumes(
        net, run_a, tmp_path, monkeypatch, capsys):
    out_a, _ = run_a
    model, out = tmp_path / "toy.npz", tmp_path / "out"
    net.save(model)
    args = ["decode", str(model), "--layers", "1-2", "--population", "400", "--batch", "2",
            "--max-generations", "30", "--rounds", "1", "--no-report", "--out", str(out)]
    real = runfolder.write_meme

    def disk_fills_in_layer2_motifs(path, motifs):
        if Path(path) != out / "layer2" / "motifs.meme":
            return real(path, motifs)
        with atomic_path(path) as tmp:  # the disk fills after the first 100 characters
            tmp.write_text(format_meme(motifs)[:100])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))

    monkeypatch.setattr(runfolder, "write_meme", disk_fills_in_layer2_motifs)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "run the same command to resume" in err
    assert "Traceback" not in err
    assert not list(out.rglob("*.tmp")) and not list(out.rglob(".*"))
    assert (out / "layer2/ppms.meme").exists() and not (out / "layer2/motifs.meme").exists()
    assert "2" not in json.loads((out / "run.json").read_text())["layers"]
    monkeypatch.undo()
    assert main(args) == 0                  # the same command resumes
    _same_outputs(out_a, out)               # and gives what an uninterrupted run gives


def test_decode_neuron_matches_the_layer_run(net, run_a):
    _, results = run_a
    r = decode_neuron(net, 1, 2, key=0, config=CONFIG)
    want = results[1].neurons[2]
    assert jax.tree_util.tree_structure(r) == jax.tree_util.tree_structure(want)
    for a, b in zip(jax.tree_util.tree_leaves(r), jax.tree_util.tree_leaves(want)):
        np.testing.assert_array_equal(a, b)
    assert nmjax.decode_neuron is decode_neuron


def test_a_run_folder_decode_reads_samples_back_one_neuron_at_a_time(net, run_a):
    """With an output folder the layer's samples stay on disk (`StoredSamples`), and the
    results are those of the same decode held in memory."""
    out, results = run_a
    stored = runfolder.StoredSamples(out / "layer2", [0, 1])
    bases, f, generations = stored[1]
    assert list(stored) == [0, 1] and len(bases) == len(f) > 0
    assert runfolder.sample_sizes(stored)[1] == (generations, len(f))
    kept = json.loads((out / "run.json").read_text())["layers"]["2"]["samples_kept"]
    assert kept["max"] == max(n for _, n in runfolder.sample_sizes(stored).values())
    in_memory = decode(net, layers=[1, 2], config=CONFIG, progress=False)
    for layer in (1, 2):
        for n, want in results[layer].neurons.items():
            got = in_memory[layer].neurons[n]
            for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
                np.testing.assert_array_equal(a, b)


def test_cli_baseline_method_and_errors(net, tmp_path, capsys):
    model = tmp_path / "toy.npz"
    net.save(model)
    assert main(["decode", str(model), "--layers", "1", "--neurons", "0,3", "--method", "kelley",
                 "--out", str(tmp_path / "out")]) == 0
    rows = (tmp_path / "out/layer1/neurons.tsv").read_text().splitlines()
    assert [r.split("\t")[:2] for r in rows[1:]] == [["0", "0"], ["3", "0"]]
    assert rows[2].split("\t")[5].startswith(planted_consensus(PLANTED[3]))
    assert main(["decode", str(model), "--layers", "5", "--out", str(tmp_path / "bad")]) == 2
    assert "conv layer 5 does not exist" in capsys.readouterr().err
    assert main(["decode", str(model), "--rounds", "x", "--out", str(tmp_path / "bad")]) == 2
    assert main(["decode", str(model), "--layers", "1", "--seed", "1", "--method", "kelley",
                 "--out", str(tmp_path / "out")]) == 2
    assert "other settings" in capsys.readouterr().err
    assert main(["decode", str(model), "--neurons", "90", "--out", str(tmp_path / "bad")]) == 2
    assert "none of the requested neurons exist in layer 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # argparse: a clear message and exit code 2
        main(["decode", str(model), "--precision", "fp16", "--out", str(tmp_path / "bad")])
    assert exit_info.value.code == 2 and "fp16" in capsys.readouterr().err
    with pytest.raises(NmjaxError, match="unknown precision 'fp16'"):
        DecodeConfig(precision="fp16")
    assert not (tmp_path / "bad").exists()


def test_run_json_records_the_rounds_rule_of_each_round(net, run_a, tmp_path):
    out = tmp_path / "auto"
    shutil.copytree(run_a[0], out)  # rounds may change in a run's folder: samples are reused
    config = dataclasses.replace(CONFIG, rounds="auto")
    result = decode(net, layers=[2], out=out, config=config, progress=False)[2]
    tests = json.loads((out / "run.json").read_text())["layers"]["2"]["rounds_tests"]
    assert [t["rounds"] for t in tests] == list(range(1, result.rounds + 1))
    assert all(not t["passed"] for t in tests[:-1])
    assert tests[-1]["passed"] or result.rounds == config.max_rounds
    last = tests[-1]
    assert last["neurons"] == 2 and last["test"] == "mean" and last["t"] is None
    ratios = neuron_ratios(list(result.neurons.values()))
    assert last["ratio"]["mean"] == pytest.approx(ratios.mean(), rel=1e-12)
    assert last["passed"] == (ratios.mean() + config.ratio_tie_margin > config.ratio_threshold)


def test_cli_method_readings_are_run_parameters(net, tmp_path, capsys):
    model, out = tmp_path / "toy.npz", tmp_path / "out"
    net.save(model)
    args = ["decode", str(model), "--layers", "1", "--neurons", "0", "--no-report",
            "--out", str(out)]
    assert main(args + ["--authors-reading", "--seeding", "window", "--ratio-tie-margin",
                        "0"]) == 0
    parameters = json.loads((out / "run.json").read_text())["parameters"]
    assert {k: parameters[k] for k in AUTHORS_READING} == {**AUTHORS_READING,
                                                          "seeding": "window"}
    assert parameters["ratio_tie_margin"] == 0.0
    assert main(args) == 2  # resuming with the paper's readings is refused
    err = capsys.readouterr().err
    assert "other settings" in err and "'patience': (11, 10)" in err
    assert main(args + ["--patience", "0"]) == 2
    assert "patience must be at least 1" in capsys.readouterr().err


def test_a_run_recorded_before_an_option_existed_resumes_with_its_default():
    old = {k: v for k, v in dataclasses.asdict(CONFIG).items() if k not in AUTHORS_READING}
    assert settings_diff(old, 0, CONFIG, 0) == {}
    assert settings_diff(old, 0, dataclasses.replace(CONFIG, empty_bin="above"), 0) == \
        {"empty_bin": ("nearest", "above")}
