"""Devices and the memory budget (nmjax.devices), shards + merge (nmjax.distribute) on the
hand-built network."""
import dataclasses
import filecmp
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from nmjax import decoder, devices
from nmjax.cli import main
from nmjax.config import DecodeConfig
from nmjax.decoder import decode
from nmjax.distribute import Shard, decode_shard, merge
from nmjax.errors import NmjaxError
from nmjax.network import Network

# ratio_threshold 1.5 cannot be met (conact <= act), so the t-test rule asks for a second
# round at layer 2: a merge must decouple both neurons again, as the single run does.
CONFIG = DecodeConfig(population=400, max_generations=30, neuron_batch=2, rounds="auto",
                      max_rounds=2, ratio_threshold=1.5)
LAYER_FILES = ("ppms.meme", "motifs.meme", "neurons.tsv")
ROOT = Path(__file__).resolve().parents[1]

TWO_DEVICE_RUN = """
import json, sys
import jax
from nmjax import ga
from nmjax.config import DecodeConfig
from nmjax.decoder import decode
from toy_network import toy_network

placed = []
real_step = ga.step_program

def recording_step(*args):
    step = real_step(*args)
    def run(params, pop, neurons):
        for name, a in (("population in", pop.bases), ("neuron ids", neurons)):
            placed.append([name, len(a.sharding.device_set),
                           [s.data.shape[0] for s in a.addressable_shards]])
        pop, out = step(params, pop, neurons)
        placed.append(["population out", len(pop.bases.sharding.device_set),
                       [s.data.shape[0] for s in pop.bases.addressable_shards]])
        return pop, out
    return run

ga.step_program = recording_step
decode(toy_network(), layers=[1, 2], out=sys.argv[1],
       config=DecodeConfig(**json.loads(sys.argv[2])), progress=False)
print(json.dumps({"devices": len(jax.devices()), "placed": placed}))
"""


@pytest.fixture(scope="module")
def single_run(net, tmp_path_factory):
    """Layers 1-2 in one process on one device: what devices and shards must reproduce."""
    out = tmp_path_factory.mktemp("single")
    results = decode(net, layers=[1, 2], out=out, config=CONFIG, progress=False)
    assert results[2].rounds == 2 and results[1].rounds == 1
    return out


def _same_layer_files(a: Path, b: Path) -> None:
    for layer in (1, 2):
        for name in LAYER_FILES:
            assert filecmp.cmp(a / f"layer{layer}" / name, b / f"layer{layer}" / name,
                               shallow=False), (layer, name)


def test_two_devices_give_the_one_device_output(single_run, tmp_path):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    proc = subprocess.run([sys.executable, "-c", TWO_DEVICE_RUN, str(tmp_path),
                           json.dumps(dataclasses.asdict(CONFIG))],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["devices"] == 2
    # every GA generation of layer 2 (2 neurons per call): 1 neuron on each of 2 devices
    assert report["placed"] and {p[0] for p in report["placed"]} == {
        "population in", "neuron ids", "population out"}
    assert all(devices == 2 and shards == [1, 1] for _, devices, shards in report["placed"])
    assert json.loads((tmp_path / "run.json").read_text())["layers"]["2"]["devices"] == 2
    _same_layer_files(single_run, tmp_path)


def test_two_shards_merged_give_the_single_run_output(net, single_run, tmp_path, capsys,
                                                      monkeypatch):
    model, out = tmp_path / "toy.npz", tmp_path / "out"
    net.save(model)
    # layer 2 is seeded by layer 1, which is not merged yet: a clear error, nothing written
    assert main(["decode", str(model), "--layers", "2", "--shard", "1/2", "--out", str(out)]) == 2
    assert "needs layer 1 complete" in capsys.readouterr().err
    assert not (out / "layer2").exists()

    decode_shard(net, Shard(0, 2), [1], config=CONFIG, out=out, progress=False,
                 model=str(model))
    assert sorted(p.name for p in (out / "layer1/samples").iterdir()) == ["neuron0.h5",
                                                                          "neuron2.h5"]
    assert not (out / "layer1/neurons.tsv").exists() and not (out / "run.json").exists()
    assert main(["merge", str(out)]) == 2  # the model path comes from the shard records
    err = capsys.readouterr().err
    assert "2 neuron(s) not decoded yet: 1,3" in err and "1/2" in err
    other_model = Network(net.config, jax.tree_util.tree_map(lambda a: a + 1, net.params))
    with pytest.raises(NmjaxError, match="'model'"):
        merge(other_model, out)

    decode_shard(net, Shard(1, 2), [1], config=CONFIG, out=out, progress=False,
                 model=str(model))
    assert main(["merge", str(out)]) == 0
    assert "layer 1: merged 4 neurons from shards 0/2, 1/2, rounds 1" in capsys.readouterr().out

    budget = dataclasses.replace(CONFIG, memory_budget=1024)  # batching is a free setting
    for i in (0, 1):
        decode_shard(net, Shard(i, 2), [2], config=budget, out=out, progress=False,
                     model=str(model))
    parts = sorted(p.name for p in (out / "layer2/parts").iterdir())
    assert parts == ["neuron0.r1.npz", "neuron1.r1.npz"]  # the shards' first round only
    merged = merge(net, out, progress=False)
    assert list(merged) == [2] and merged[2].rounds == 2
    assert (out / "layer2/parts/neuron1.r2.npz").exists()
    _same_layer_files(single_run, out)
    run = json.loads((out / "run.json").read_text())
    assert run["layers"]["2"]["rounds"] == 2 and run["layers"]["2"]["shards"] == ["0/2", "1/2"]
    assert run["layers"]["2"]["memory_budget"] == 1024

    calls = []
    monkeypatch.setattr(decoder, "sample_stream", lambda *a: calls.append(a))
    assert decode_shard(net, Shard(1, 2), [2], config=CONFIG, out=out, progress=False) == {2: [1]}
    assert calls == []  # finished neurons are skipped
    with pytest.raises(NmjaxError, match="other settings"):
        decode_shard(net, Shard(1, 2), [2], seed=1, config=CONFIG, out=out, progress=False)


def test_memory_budget_sets_the_neuron_batch(net, capsys, monkeypatch):
    config = dataclasses.replace(CONFIG, neuron_batch=4)
    per_neuron = devices.ga_bytes_per_neuron(net, 2, config)
    assert devices.neuron_batch(net, 2, config, 10) == 4
    assert devices.neuron_batch(net, 2, dataclasses.replace(config, memory_budget=1 << 33),
                                   10) == 4
    tiny = dataclasses.replace(config, memory_budget=1024)
    assert devices.neuron_batch(net, 2, tiny, 10) == 1
    fits_three = dataclasses.replace(config, memory_budget=3 * per_neuron + 1)
    assert devices.neuron_batch(net, 2, fits_three, 10) == 3
    assert devices.neuron_batch(net, 2, config, 2) == 2  # never more than the neurons
    # the estimate bounds what XLA reports for one more neuron in the call, not by far
    measured = (devices.ga_temp_bytes(net, 2, config, 2)
                - devices.ga_temp_bytes(net, 2, config, 1))
    assert measured <= per_neuron <= 4 * measured, (measured, per_neuron)
    # decode runs the GA with the chosen batch of slots and records it
    calls = []

    def record_slots(net_, layer, neurons, keys, config_, below, slots, usage):
        calls.append((len(neurons), slots))
        for i in range(len(neurons)):
            yield i, (np.zeros((1, 15), np.uint8), np.ones(1, np.float32)), 1

    monkeypatch.setattr(decoder, "sample_stream", record_slots)
    _, timings = decoder.sample_layer(net, 2, [0, 1], 0, tiny, None, None, False)
    assert calls == [(2, 1)] and timings["neurons_per_call"] == 1
    assert timings["memory_budget"] == 1024
    _, timings = decoder.sample_layer(net, 2, [0, 1], 0, config, None, None, False)
    assert calls[1:] == [(2, 2)] and timings["neurons_per_call"] == 2
    assert devices.parse_size("8G") == 8 << 30 and devices.parse_size("1.5KiB") == 1536
    assert main(["decode", "--memory-budget", "lots", "--out", "unused"]) == 2
    assert "bad memory size 'lots'" in capsys.readouterr().err
    assert main(["decode", "--shard", "2/2", "--out", "unused"]) == 2
    assert "bad shard 2/2" in capsys.readouterr().err
    assert not Path("unused").exists()
