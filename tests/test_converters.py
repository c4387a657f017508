"""Readers of Keras files vs Keras's own numbers (fixtures made by tests/fixtures/make_fixtures.py)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import jax
import numpy as np
import pytest

from converters import read_model
from converters.keras import export_keras2_h5
from converters.keras import main as convert_main
from nmjax.errors import ModelError

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).parents[1]

# (model file, architecture file or None, reference outputs)
FORMATS = [
    ("k2_seq.h5", None, "k2_seq_ref.npz"),
    ("k2_seq_weights.h5", "k2_seq.json", "k2_seq_ref.npz"),
    ("k3_seq.keras", None, "k3_seq_ref.npz"),
    ("k3_seq.h5", None, "k3_seq_ref.npz"),
    ("k3_seq.weights.h5", "k3_seq.json", "k3_seq_ref.npz"),
    ("k2_func.h5", None, "k2_func_ref.npz"),
    ("k2_func_weights.h5", "k2_func.json", "k2_func_ref.npz"),
    ("k3_func.keras", None, "k3_func_ref.npz"),
    ("k3_func.h5", None, "k3_func_ref.npz"),
    ("k3_func.weights.h5", "k3_func.json", "k3_func_ref.npz"),
]


def _load(model, arch=None):
    return read_model(FIXTURES / model, arch and FIXTURES / arch)


def _leaves(net) -> dict:
    return {jax.tree_util.keystr(k): np.asarray(v)
            for k, v in jax.tree_util.tree_leaves_with_path(net.params)}


@pytest.fixture(scope="module")
def seq_net():
    return _load("k2_seq.h5")


@pytest.mark.parametrize("model,arch,ref", FORMATS, ids=[f[0] for f in FORMATS])
def test_matches_keras_on_every_conv_layer_and_output(model, arch, ref):
    net = _load(model, arch)
    want = np.load(FIXTURES / ref)
    x = want["x"]
    n_convs = sum(1 for k in want.files if k.startswith("conv"))
    assert net.num_conv_layers == n_convs == 3
    diffs = {}
    for l in range(1, n_convs + 1):
        got, exp = np.asarray(net.conv_output(x, l)), want[f"conv{l}"]
        assert got.shape == exp.shape
        diffs[f"conv{l}"] = float(np.max(np.abs(got - exp)))
        assert diffs[f"conv{l}"] <= 1e-5 * np.max(np.abs(exp)), (l, diffs)
    out = np.asarray(net.predict(x))
    assert out.shape == want["output"].shape
    diffs["output"] = float(np.max(np.abs(out - want["output"])))
    assert diffs["output"] <= 1e-5 * np.max(np.abs(want["output"])), diffs
    print(f"{model}: max abs diff vs Keras {diffs}")


def test_sequential_structure_is_folded_as_expected(seq_net):
    convs = seq_net.config.convs
    assert [c.kernel_width for c in convs] == [7, 5, 3]
    assert [c.pool for c in convs] == [2, 3, 1]
    assert [c.post_affine for c in convs] == [False, True, False]  # BN after relu inside Conv1D
    assert [h.kind for h in seq_net.config.head] == ["flatten", "dense", "dense"]
    func = _load("k3_func.keras")
    assert [c.activation for c in func.config.convs] == ["leaky_relu:0.3", "relu", "elu"]
    assert _load("k2_func.h5").config.convs == func.config.convs  # tf-keras stores alpha in float32
    assert [h.kind for h in func.config.head] == ["global_max_pool", "affine", "dense"]


def test_receptive_field_gives_one_output_position(seq_net):
    x = np.load(FIXTURES / "k2_seq_ref.npz")["x"]
    for row in seq_net.layer_table():
        l, rf = row["layer"], row["receptive_field"]
        window = np.asarray(seq_net.conv_output(x[:, :rf], l))
        assert window.shape[1] == 1
        np.testing.assert_array_equal(window[:, 0], np.asarray(seq_net.conv_output(x, l))[:, 0])
    assert [r["receptive_field"] for r in seq_net.layer_table()] == [7, 16, 32]
    assert [r["shift_multiplicity"] for r in seq_net.layer_table()] == [1, 2, 6]


def test_neuron_fn_equals_conv_output(seq_net):
    x = np.load(FIXTURES / "k2_seq_ref.npz")["x"]
    rf = seq_net.receptive_field(2)
    values = np.asarray(seq_net.neuron_values(x[:4, :rf], 2, np.arange(4)))
    expected = np.asarray(seq_net.conv_output(x[:4, :rf], 2))[np.arange(4), 0, np.arange(4)]
    np.testing.assert_allclose(values, expected, rtol=1e-6, atol=1e-6)


def test_checkpoint_round_trip(seq_net, tmp_path):
    path = tmp_path / "seq.npz"
    assert convert_main([str(FIXTURES / "k2_seq.h5"), str(path)]) == 0
    back = read_model(path)
    assert back.config == seq_net.config
    a, b = _leaves(seq_net), _leaves(back)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seq.npz"]


@pytest.mark.parametrize("model", ["k2_seq.h5", "k3_func.keras"])
def test_keras2_export_reads_back_exactly(model, tmp_path):
    net = _load(model)
    path = tmp_path / "export.h5"
    export_keras2_h5(net, path)
    with h5py.File(path) as f:
        assert f.attrs["keras_version"].startswith("2.")
        assert json.loads(f.attrs["model_config"])["class_name"] == "Sequential"
        assert "model_weights/conv1/conv1/kernel:0" in f
    back = read_model(path)
    assert [(c.kernel_width, c.channels, c.activation, c.pool, c.post_affine)
            for c in back.config.convs] == [(c.kernel_width, c.channels, c.activation, c.pool,
                                             c.post_affine) for c in net.config.convs]
    assert [(h.kind, h.units, h.activation) for h in back.config.head] == \
        [(h.kind, h.units, h.activation) for h in net.config.head]
    a, b = _leaves(net), _leaves(back)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    x = np.load(FIXTURES / "k2_seq_ref.npz")["x"]
    np.testing.assert_array_equal(np.asarray(net.predict(x)), np.asarray(back.predict(x)))


def test_real_keras_loaded_our_exports():
    """make_fixtures.py loaded export_*.h5 with tf-keras and Keras 3; the recorded differences."""
    meta = json.loads((FIXTURES / "metadata.json").read_text())
    checks = meta["export_check_max_abs_diff"]
    assert len(checks) == 4
    assert all(d <= 1e-5 for d in checks.values()), checks
    net, ref = _load("export_func.h5"), _load("k2_func.h5")
    x = np.load(FIXTURES / "k2_func_ref.npz")["x"]
    np.testing.assert_array_equal(np.asarray(net.predict(x)), np.asarray(ref.predict(x)))


def test_keras3_weights_without_name_metadata_use_generated_group_names(tmp_path):
    path = tmp_path / "w.weights.h5"
    shutil.copy(FIXTURES / "k3_func.weights.h5", path)
    with h5py.File(path, "r+") as f:
        for g in f["layers"].values():
            g["vars"].attrs.pop("name", None)
    a, b = _leaves(_load("k3_func.keras")), _leaves(read_model(path, FIXTURES / "k3_func.json"))
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


UNSUPPORTED = [
    ("conv2d.keras", ["conv2d_layer", "Conv2D"]),
    ("strided.keras", ["strided_conv", "strides=2"]),
    ("dilated.keras", ["dilated_conv", "dilation_rate=2"]),
    ("same_padding.keras", ["same_conv", "padding='same'"]),
    ("avgpool.keras", ["avg_pool", "AveragePooling1D", "max pooling"]),
    ("pool_stride.keras", ["overlap_pool", "pool_size=3 but strides=2"]),
    ("five_channels.keras", ["5 channels", "one-hot DNA"]),
    ("lstm.keras", ["lstm_layer", "LSTM", "recurrent"]),
    ("skip.keras", ["skip_add", "branches"]),
    ("k2_skip.h5", ["skip_add", "branches"]),
]


@pytest.mark.parametrize("model,words", UNSUPPORTED, ids=[u[0] for u in UNSUPPORTED])
def test_unsupported_models_are_refused_with_the_reason(model, words):
    with pytest.raises(ModelError) as err:
        read_model(FIXTURES / "unsupported" / model)
    for w in [model, *words]:
        assert w in str(err.value)


def _truncate(src, dst):
    data = (FIXTURES / src).read_bytes()
    dst.write_bytes(data[: len(data) // 2])


def _edit_h5(src, dst, edit):
    shutil.copy(FIXTURES / src, dst)
    with h5py.File(dst, "r+") as f:
        edit(f)


def _reshape_kernel(f):
    del f["model_weights/c2/c2/kernel:0"]
    f["model_weights/c2/c2/kernel:0"] = np.zeros((4, 6, 5), np.float32)


def _corrupt_keras_weights(dst):
    with zipfile.ZipFile(FIXTURES / "k3_seq.keras") as src, zipfile.ZipFile(dst, "w") as out:
        out.writestr("config.json", src.read("config.json"))
        out.writestr("model.weights.h5", src.read("model.weights.h5")[:2000])


BROKEN = {
    "truncated_h5": (lambda p: _truncate("k2_seq.h5", p), None, ["cannot open as HDF5"]),
    "truncated_keras": (lambda p: _truncate("k3_seq.keras", p), None, [".keras archive"]),
    "truncated_export": (lambda p: _truncate("export_seq.h5", p), None, ["HDF5"]),
    "keras_corrupt_weights": (_corrupt_keras_weights, None, ["model.weights.h5", "HDF5"]),
    "garbage": (lambda p: p.write_bytes(b"not a model at all"), None, ["not an HDF5 file"]),
    "empty": (lambda p: p.write_bytes(b""), None, ["not an HDF5 file"]),
    "missing_weight": (lambda p: _edit_h5("k2_seq.h5", p,
                                          lambda f: f.__delitem__("model_weights/bn1/bn1/gamma:0")),
                       None, ["bn1/gamma:0", "missing"]),
    "misshaped_weight": (lambda p: _edit_h5("k2_seq.h5", p, _reshape_kernel), None,
                         ["'c2'", "(4, 6, 5)", "(5, 6, 5)"]),
    "wrong_architecture": (lambda p: shutil.copy(FIXTURES / "k2_seq_weights.h5", p),
                           "k2_func.json", ["f_c1", "do not match"]),
    "weights_without_architecture": (lambda p: shutil.copy(FIXTURES / "k3_seq.weights.h5", p),
                                     None, ["architecture"]),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_files_give_a_named_error_and_exit_2_writing_nothing(case, tmp_path, capsys):
    make, arch, words = BROKEN[case]
    model = tmp_path / f"{case}.bin"
    make(model)
    arch_path = arch and str(FIXTURES / arch)
    with pytest.raises(ModelError) as err:
        read_model(model, arch_path)
    for w in [str(model), *words]:
        assert w in str(err.value)
    out = tmp_path / "out.npz"
    argv = [str(model), str(out)] + (["--architecture", arch_path] if arch else [])
    assert convert_main(argv) == 2
    assert str(model) in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == [model.name]


def test_truncated_nmjax_checkpoint(tmp_path):
    good = tmp_path / "good.npz"
    _load("k2_func.h5").save(good)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(good.read_bytes()[:300])
    with pytest.raises(ModelError, match="bad.npz"):
        read_model(bad)


def test_converter_cli_exit_code_2_in_a_subprocess(tmp_path):
    out = tmp_path / "out.npz"
    proc = subprocess.run([sys.executable, "-m", "converters.keras",
                           str(FIXTURES / "unsupported" / "lstm.keras"), str(out)],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "lstm_layer" in proc.stderr and "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_old_keras2_layouts_bytes_attributes_and_bare_layer_list(tmp_path):
    """Keras 2.0-2.2 files: bytes attributes, Sequential config as a bare list, input shape on
    the first layer instead of an InputLayer."""
    model = tmp_path / "old.h5"
    shutil.copy(FIXTURES / "k2_seq.h5", model)
    with h5py.File(model, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        layers = config["config"]["layers"]
        layers[1]["config"]["batch_input_shape"] = layers[0]["config"]["batch_input_shape"]
        config["config"] = layers[1:]
        f.attrs["model_config"] = np.bytes_(json.dumps(config))
        for g in f["model_weights"].values():
            names = [n.encode() for n in g.attrs["weight_names"]]
            g.attrs["weight_names"] = np.array(names, dtype="S")
    a, b = _leaves(_load("k2_seq.h5")), _leaves(read_model(model))
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_weights_for_layers_missing_from_the_architecture_are_an_error(tmp_path):
    arch = json.loads((FIXTURES / "k2_seq.json").read_text())
    arch["config"]["layers"] = arch["config"]["layers"][:-2]  # drop Dropout and the output Dense
    short = tmp_path / "short.json"
    short.write_text(json.dumps(arch))
    with pytest.raises(ModelError, match=r"layers \['out'\].*does not match"):
        read_model(FIXTURES / "k2_seq_weights.h5", short)
