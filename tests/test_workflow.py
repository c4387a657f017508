"""`nmjax workflow`: the Snakemake workflow of a sharded decode, run with the local executor.

The bundled example, layers 1-3 (layer 1 enumerated, layers 2-3 by the GA, each seeded by the
merge below), three neurons a layer in two shards: the files equal those of one `nmjax decode`
with the same settings, and a run killed in the middle of layer 2 and resumed by Snakemake
recomputes no finished neuron. Every process shares one JAX compilation cache
(JAX_COMPILATION_CACHE_DIR), so each program is compiled once, not once per job.
"""
import filecmp
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nmjax.cli import main

SETTINGS = ["--layers", "1-3", "--neurons", "0-2", "--population", "200",
            "--max-generations", "12"]
DECODE_FILES = ("ppms.meme", "motifs.meme", "neurons.tsv")
REPORT_FILES = ("matches.tsv", "grammar.tsv")


def workflow_args(out: Path, *options: str, snakemake: tuple[str, ...] = ()) -> list[str]:
    return ["workflow", *SETTINGS, "--shards", "2", "--out", str(out), "--run", "--cores", "2",
            *options, "--", *snakemake]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One `nmjax decode` (with its report) of what the workflow decodes, in a process that
    fills the compilation cache the workflow's jobs then read."""
    out = tmp_path_factory.mktemp("decode")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path_factory.mktemp("jax-cache")))
        proc = subprocess.run([sys.executable, "-m", "nmjax", "decode", *SETTINGS, "--out",
                               str(out)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-3000:]
        yield out


def decoded_files(out: Path, layer_files: tuple[str, ...]) -> list[str]:
    """The layer files and per-neuron samples of a decode output, relative to it."""
    files = [f"layer{l}/{name}" for l in (1, 2, 3) for name in layer_files]
    samples = sorted(str(p.relative_to(out)) for p in out.glob("layer*/samples/neuron*.h5"))
    return files + samples


def assert_same_decode(reference: Path, out: Path, layer_files: tuple[str, ...]) -> None:
    names = decoded_files(reference, layer_files)
    assert len(names) == 3 * len(layer_files) + 9 and decoded_files(out, layer_files) == names
    differ = [n for n in names if not filecmp.cmp(reference / n, out / n, shallow=False)]
    assert differ == []


def mtimes(out: Path, pattern: str) -> dict[str, int]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in out.glob(pattern)}


def test_workflow_gives_the_files_of_one_decode(reference, tmp_path, capsys):
    """Written, then run: the layer files, samples, matches and grammars of one decode."""
    out = tmp_path / "run"
    assert main(["workflow", *SETTINGS, "--shards", "2", "--out", str(out)]) == 0
    assert "run it (or resume it) with: " in capsys.readouterr().out
    settings = json.loads((out / "nmjax-workflow.json").read_text())
    assert settings["shards"] == {"1": 2, "2": 2, "3": 2}
    assert settings["decode_args"][:2] == ["--seed", "0"] and "--neurons" in settings["decode_args"]
    assert not (out / "layer1").exists()  # written, not run

    assert main(workflow_args(out)) == 0
    assert_same_decode(reference, out, DECODE_FILES + REPORT_FILES)
    for layer in (1, 2, 3):
        records = sorted(p.name for p in (out / f"layer{layer}/shards").iterdir())
        assert records == ["shard0of2.json", "shard1of2.json"]
    assert (out / "report/index.html").exists() and (out / "logs/report.log").exists()
    assert json.loads((out / "run.json").read_text())["layers"]["3"]["shards"] == ["0/2", "1/2"]


def test_killed_workflow_resumes_without_recomputing_finished_neurons(reference, tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "nmjax", *workflow_args(out, "--no-report")]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not list(out.glob("layer2/samples/neuron*.h5")):
            assert proc.poll() is None and time.monotonic() < deadline, "no layer-2 neuron"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # snakemake and every job it started
        proc.wait()
    assert not (out / "layer2/neurons.tsv").exists()  # killed in the middle of layer 2
    finished = mtimes(out, "layer*/samples/neuron*.h5")
    finished.update(mtimes(out, "layer*/shards/*.json"))
    assert len(mtimes(out, "layer2/samples/*.h5")) >= 1 and len(finished) >= 3 + 2 + 1

    # a hard kill leaves Snakemake's lock: --unlock, then the same command resumes
    assert main(workflow_args(out, "--no-report", snakemake=("--unlock",))) == 0
    assert main(workflow_args(out, "--no-report")) == 0
    assert_same_decode(reference, out, DECODE_FILES)
    after = mtimes(out, "layer*/samples/neuron*.h5")
    after.update(mtimes(out, "layer*/shards/*.json"))
    assert {name: after[name] for name in finished} == finished  # nothing finished redone


def test_workflow_refuses_bad_settings(tmp_path, capsys):
    out = tmp_path / "bad"
    assert main(["workflow", "--layers", "9", "--out", str(out)]) == 2
    assert "conv layer 9 does not exist" in capsys.readouterr().err
    assert main(["workflow", "--shards", "0", "--out", str(out)]) == 2
    assert "--shards must be at least 1" in capsys.readouterr().err
    assert not out.exists()
