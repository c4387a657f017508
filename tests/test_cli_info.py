"""`nmjax info` and receptive fields of the paper's architectures."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nmjax.network import ConvSpec, ConvStack, HeadOp, Network, NetworkConfig, expected_param_shapes

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).parents[1]


def _config(kernels, pools, channels=2) -> NetworkConfig:
    convs, cin = [], 4
    for k, p in zip(kernels, pools):
        convs.append(ConvSpec(kernel_width=k, channels=channels, in_channels=cin, pool=p))
        cin = channels
    return NetworkConfig(convs=tuple(convs), head=(HeadOp("global_max_pool"),))


BASSET = _config([19, 11, 7], [3, 4, 4])
BD10 = _config([7] + [3] * 9, [1, 2] * 5)


def _output_length(config: NetworkConfig, layer: int, length: int) -> int:
    """Conv `layer` output length for an input of `length`, by shape evaluation only."""
    params = jax.eval_shape(lambda: ConvStack(config).init(jax.random.key(0),
                                                           jnp.zeros((1, 1000, 4))))["params"]
    out = jax.eval_shape(lambda p, x: ConvStack(config).apply({"params": p}, x, layer,
                                                              method=ConvStack.conv_output),
                         params, jax.ShapeDtypeStruct((1, length, 4), jnp.float32))
    return out.shape[1]


@pytest.mark.parametrize("config,expected", [(BASSET, {1: 19, 2: 51, 3: 132}), (BD10, {10: 144})],
                         ids=["basset", "bd10"])
def test_receptive_fields_of_the_paper(config, expected):
    net = Network(config, {})
    for layer, rf in expected.items():
        assert net.receptive_field(layer) == rf
        assert _output_length(config, layer, rf) == 1  # the window gives exactly one output
        assert _output_length(config, layer, rf - 1) == 0
    assert [net.shift_multiplicity(l) for l in (1, 2, 3)] == \
        ([1, 3, 12] if config is BASSET else [1, 1, 2])


def _run_info(*args):
    return subprocess.run([sys.executable, "-m", "nmjax", "info", *map(str, args)],
                          cwd=REPO, capture_output=True, text=True)


def test_info_prints_the_layer_table_of_a_keras_file():
    proc = _run_info(FIXTURES / "k3_seq.keras")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    rows = [l.split() for l in lines[2:]]
    assert lines[1].split() == ["layer", "kernel", "channels", "activation", "pool",
                                "receptive_field", "shifts"]
    assert rows == [["1", "7", "6", "relu", "2", "7", "bp", "1"],
                    ["2", "5", "5", "relu", "3", "16", "bp", "2"],
                    ["3", "3", "4", "relu", "1", "32", "bp", "6"]]


def test_info_of_a_basset_checkpoint(tmp_path):
    config = NetworkConfig(convs=BASSET.convs, head=BASSET.head, input_length=600)
    params = jax.tree_util.tree_map(lambda s: np.zeros(s, np.float32),
                                    expected_param_shapes(config),
                                    is_leaf=lambda s: isinstance(s, tuple))
    Network(config, params).save(tmp_path / "basset.npz")
    proc = _run_info(tmp_path / "basset.npz")
    assert proc.returncode == 0, proc.stderr
    assert [l.split()[5] for l in proc.stdout.splitlines()[2:]] == ["19", "51", "132"]


@pytest.mark.parametrize("model", ["unsupported/lstm.keras", "unsupported/five_channels.keras"])
def test_info_refuses_with_exit_2_and_writes_nothing(model, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "nmjax", "info", str(FIXTURES / model)],
                          cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2
    assert model.split("/")[1] in proc.stderr and "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []
