"""Bad input on the decode path: non-finite weights, dead neurons, an --out that is a file."""
from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

import nmjax
from nmjax.cli import main
from nmjax.config import DecodeConfig
from nmjax.decoder import decode
from nmjax.errors import ModelError
from nmjax.example import example_model_path
from nmjax.meme import Motif, write_meme
from nmjax.motifdb import jaspar_motif
from nmjax.network import Network
from nmjax.report import finish_run
from toy_network import PLANTED, toy_network

FIXTURES = Path(__file__).parent / "fixtures"
EXAMPLE = example_model_path()


def _spoil_h5(f: h5py.File, value: float) -> str:
    """Write `value` into the first weight of the first bias dataset of an open HDF5 file;
    returns the dataset's name."""
    names = []
    f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset)
                 and obj.ndim == 1 and obj.dtype.kind == "f" else None)
    ds = f[names[0]]
    data = ds[()]
    data[0] = value
    ds[...] = data
    return names[0]


def _npz(tmp_path: Path, value: float) -> tuple[Path, None]:
    weights = dict(np.load(EXAMPLE))
    weights["conv1/bias"] = weights["conv1/bias"].copy()
    weights["conv1/bias"][3] = value
    path = tmp_path / "model.npz"
    np.savez(path, **weights)
    return path, None


def _h5(source: Path, arch: Path | None):
    def build(tmp_path: Path, value: float) -> tuple[Path, Path | None]:
        path = tmp_path / source.name
        shutil.copy(source, path)
        with h5py.File(path, "r+") as f:
            _spoil_h5(f, value)
        return path, arch
    return build


def _keras_zip(tmp_path: Path, value: float) -> tuple[Path, None]:
    source = FIXTURES / "k3_seq.keras"
    path = tmp_path / source.name
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(path, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename == "model.weights.h5":
                buffer = io.BytesIO(data)
                with h5py.File(buffer, "r+") as f:
                    _spoil_h5(f, value)
                data = buffer.getvalue()
            zout.writestr(item, data)
    return path, None


# reader -> (fixture builder, the tensor the error must name: the file's own weight name)
READERS = {"npz": (_npz, "conv1/bias"),
           "keras2_h5": (_h5(EXAMPLE.with_name("model_keras2.h5"), None), "conv1/conv1/bias:0"),
           "keras3_zip": (_keras_zip, "bn1/gamma (vars/0)"),
           "weights_json": (_h5(FIXTURES / "k2_seq_weights.h5", FIXTURES / "k2_seq.json"),
                            "bn1/bn1/beta:0")}


@pytest.mark.parametrize("value", [np.nan, np.inf], ids=["nan", "inf"])
@pytest.mark.parametrize("reader", READERS)
def test_non_finite_weights_are_refused_at_load_naming_the_tensor(reader, value, tmp_path):
    build, tensor = READERS[reader]
    path, arch = build(tmp_path, value)
    with pytest.raises(ModelError) as err:
        nmjax.load(path, arch)
    kind = "NaN" if np.isnan(value) else "infinite"
    assert str(err.value).startswith(f"{'' if arch is None else f'{arch} + '}{path}: weight "
                                     f"{tensor} holds 1 {kind} value(s) (first at index (")
    assert "re-export the model" in str(err.value)


def test_cli_refuses_a_nan_model_with_exit_2_and_writes_nothing(tmp_path, capsys):
    model, _ = _npz(tmp_path, np.nan)
    assert main(["info", str(model)]) == 2
    err = capsys.readouterr().err
    assert "weight conv1/bias holds 1 NaN" in err and "index (3,)" in err
    assert "Traceback" not in err
    out = tmp_path / "out"
    assert main(["decode", str(model), "--layers", "1", "--out", str(out)]) == 2
    assert "conv1/bias" in capsys.readouterr().err
    assert not out.exists()


def test_an_out_that_is_a_file_is_refused(tmp_path, capsys):
    model = tmp_path / "toy.npz"
    toy_network().save(model)
    taken = tmp_path / "taken.txt"
    taken.write_text("keep me\n")
    for out in (taken, taken / "sub"):
        assert main(["decode", str(model), "--layers", "1", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"{taken} is an existing file, not a folder" in err and "--out" in err
    assert taken.read_text() == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.txt", "toy.npz"]


@pytest.fixture(scope="module")
def dead_run(tmp_path_factory):
    """The toy network with neuron 0 dead in both layers (a bias no window can overcome):
    layer-2 neuron 0 reads only layer-1 neuron 0, and its own bias is hugely negative too."""
    toy = toy_network()
    params = {k: {n: np.array(v) for n, v in layer.items()} for k, layer in toy.params.items()}
    params["conv1"]["bias"][0] = -1e4
    params["conv2"]["bias"][0] = -1e4
    net = Network(toy.config, params)
    out = tmp_path_factory.mktemp("dead")
    config = DecodeConfig(population=100, max_generations=8, rounds=1)
    return out, decode(net, layers=[1, 2], out=out, config=config, progress=False)


def test_a_neuron_dead_at_every_layer_is_marked_and_the_rest_decodes(dead_run):
    out, results = dead_run
    for layer in (1, 2):
        assert results[layer].neurons[0].dead
        rows = (out / f"layer{layer}/neurons.tsv").read_text().splitlines()
        assert rows[1] == "0\t0\t0\tnan\tnan\t"
        with h5py.File(out / f"layer{layer}/samples/neuron0.h5") as h5:
            assert h5["sequences"].shape == (0, results[layer].timings["receptive_field"])
        assert results[layer].timings["dead_neurons"] == 1
    assert not results[1].neurons[1].dead and not results[2].neurons[1].dead
    assert results[2].neurons[1].n.sum() > 50  # seeded by layer 1 with one dead neuron


def test_report_and_grammar_of_a_run_with_dead_neurons(dead_run, tmp_path):
    out, _ = dead_run
    db = tmp_path / "planted.meme"
    write_meme(db, [Motif(m, jaspar_motif(m).ppm, 20) for m in PLANTED])
    analysis = finish_run(out, db)
    assert Path(analysis["report"]).is_file()
    diagnosis = json.loads((out / "diagnose.json").read_text())
    assert all(diagnosis["layers"][l]["counts"]["dead"] == 1 for l in ("1", "2"))
    assert (out / "layer2/grammar.json").is_file()
