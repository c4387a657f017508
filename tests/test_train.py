"""Training: the loss falls, the BatchNorm-folded Network equals the training module in
evaluation mode, outputs are written, and the Keras 2 export loads back identically."""
import json

import jax
import numpy as np
import pytest

import nmjax
from nmjax import cli
from nmjax.architectures import ARCHITECTURES, build_config
from nmjax.errors import NmjaxError
from nmjax.network import load_checkpoint
from nmjax.simulate import SimulationConfig, TaskSpec, simulate
from nmjax.train import TrainingModule, TrainConfig, train_on_simulation

DATASET = SimulationConfig(
    (TaskSpec("spi1", "single", ("MA0080.7",), positive_rate=0.5),
     TaskSpec("ctcf", "single", ("MA0139.2",), positive_rate=0.5)),
    length=100, n_train=2048, n_valid=128, n_test=256, seed=11)
SETTINGS = TrainConfig(epochs=3, batch_size=32, learning_rate=1e-2, patience=3, seed=5)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained")
    result, metrics = train_on_simulation(DATASET, "example5", 0.5, SETTINGS, out, progress=False)
    return result, metrics, out


def test_loss_decreases(trained):
    result, metrics, _ = trained
    train_losses = [h["train_loss"] for h in result.history]
    assert train_losses[-1] < train_losses[0] - 0.05, train_losses
    assert set(metrics["test"]) == {"spi1", "ctcf"}
    # half the test sequences are positive: chance AUPRC is 0.5; the strong CTCF motif is learnt
    assert metrics["test"]["ctcf"]["auprc"] > 0.75, metrics["test"]
    assert metrics["test"]["ctcf"]["auroc"] > 0.75, metrics["test"]


def test_folded_network_equals_training_module(trained):
    result, _, _ = trained
    net = result.network
    x = simulate(DATASET, "test").onehot[:64].astype(np.float32)
    module = TrainingModule(net.config)
    logits, state = module.apply(result.variables, x, train=False, mutable=["intermediates"])
    np.testing.assert_allclose(np.asarray(net.predict(x)), np.asarray(jax.nn.sigmoid(logits)),
                               rtol=1e-5, atol=1e-6)
    for l in range(1, net.num_conv_layers + 1):
        (want,) = state["intermediates"][f"conv{l}_output"]
        np.testing.assert_allclose(np.asarray(net.conv_output(x, l)), np.asarray(want),
                                   rtol=1e-4, atol=1e-4)
    # BatchNorm statistics are real (not the identity), so the fold is exercised
    stats = result.variables["batch_stats"]["bn1"]
    assert np.abs(np.asarray(stats["mean"])).max() > 1e-3


def test_outputs_written_and_checkpoint_reloads(trained):
    result, metrics, out = trained
    net = load_checkpoint(out / "model.npz")
    x = simulate(DATASET, "valid").onehot.astype(np.float32)
    np.testing.assert_array_equal(np.asarray(net.predict(x)),
                                  np.asarray(result.network.predict(x)))
    assert json.loads((out / "tasks.json").read_text())["seed"] == DATASET.seed
    assert "MOTIF MA0080.7" in (out / "planted.meme").read_text()
    written = json.loads((out / "metrics.json").read_text())
    assert written["test"] == metrics["test"] and written["best_epoch"] >= 1


def test_keras2_export_loads_back_identically(trained):
    result, metrics, out = trained
    assert metrics["keras_export"] == "model_keras2.h5"
    exported = nmjax.load(out / "model_keras2.h5")
    x = simulate(DATASET, "valid").onehot.astype(np.float32)
    np.testing.assert_allclose(np.asarray(exported.predict(x)),
                               np.asarray(result.network.predict(x)), rtol=1e-6, atol=1e-7)
    for l in range(1, exported.num_conv_layers + 1):
        np.testing.assert_allclose(np.asarray(exported.conv_output(x, l)),
                                   np.asarray(result.network.conv_output(x, l)),
                                   rtol=1e-6, atol=1e-6)


def test_named_architectures():
    # receptive fields quoted in the paper: BD-10 / DD-10 top layer 144 bp, BD-5 layer 3 18 bp
    assert build_config("bd10", 3, 200, 0.25).convs[0].channels == 16
    for name, layer, field in (("bd10", 10, 144), ("dd10", 10, 144), ("bd5", 3, 18),
                               ("basset", 3, 132), ("example5", 5, 82)):
        arch = ARCHITECTURES[name]
        assert nmjax.receptive_field(arch.kernel_widths, arch.pools, layer) == field
    with pytest.raises(NmjaxError, match="too short"):
        build_config("basset", 2, 60)
    with pytest.raises(NmjaxError, match="unknown architecture"):
        build_config("resnet", 2, 200)


def test_cli_simulate_writes_a_split(tmp_path):
    config = tmp_path / "cfg.json"
    config.write_text(json.dumps({**DATASET.to_json(), "n_valid": 10}))
    assert cli.main(["simulate", "--dataset", str(config), "--split", "valid",
                     "--out", str(tmp_path / "valid.npz")]) == 0
    with np.load(tmp_path / "valid.npz") as data:
        assert data["onehot"].shape == (10, 100, 4)
        np.testing.assert_array_equal(data["labels"], simulate(DATASET, "valid").labels[:10])


def test_bundled_example_reproduces_its_recorded_metrics():
    from nmjax.example import (example_metrics_path, example_model_path, example_motifs_path,
                               example_tasks_path)
    from nmjax.meme import read_meme
    from nmjax.simulate import load_config
    from nmjax.train import task_metrics

    net = nmjax.load()
    config = load_config(example_tasks_path())
    recorded = json.loads(example_metrics_path().read_text())["test"]
    test = simulate(config, "test")
    measured = task_metrics(net, test.onehot.astype(np.float32), test.labels, config.task_names)
    for task in config.task_names:   # float32 sums differ in the 7th digit across jax/numpy builds
        assert measured[task]["auprc"] == pytest.approx(recorded[task]["auprc"], abs=1e-5)
        assert measured[task]["auprc"] >= 0.9, (task, measured[task])
    planted = {m.name for m in read_meme(example_motifs_path())}
    assert planted == {m for t in config.tasks for m in t.motifs}
    keras = nmjax.load(example_model_path().with_name("model_keras2.h5"))
    np.testing.assert_allclose(np.asarray(keras.predict(test.onehot[:256])),
                               np.asarray(net.predict(test.onehot[:256])), rtol=1e-6, atol=1e-7)
