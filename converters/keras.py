"""Read Keras model files with h5py/json/zipfile only, and write Keras 2 HDF5 files.

Formats read (`read_keras`):
- Keras 2 full-model HDF5 (`model.save('m.h5')`, ModelCheckpoint): attrs `model_config`,
  weights at `model_weights/<layer>/<layer>/kernel:0`, listed in each group's `weight_names`;
- Keras 3 legacy `.h5`: the same layout with `<model>/<layer>/kernel` names;
- Keras 3 `.keras` zip: `config.json` + `model.weights.h5`, variables stored as
  `layers/<snake_case(class)>[_n]/vars/<i>` (matched to config layers by the `name` attribute
  of `vars` when present, else by Keras's generated name);
- weights-only HDF5 (Keras 2 `save_weights('w.h5')`, Keras 3 `.weights.h5`) with the
  `model.to_json()` architecture file.
`read_model` reads these or an nmjax checkpoint (.npz).

Command line: `python -m converters.keras MODEL OUT [--architecture JSON]` writes an nmjax
checkpoint; errors go to stderr with exit code 2 and nothing is written.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np

from nmjax.activations import leaky_slope
from nmjax.errors import ModelError, NmjaxError
from nmjax.fileio import atomic_path
from nmjax.network import Network, check_finite, load_checkpoint

from .keras_arch import KerasLayer, layer_chain, weight_roles
from .keras_fold import build_network

KERAS2_VERSION = "2.15.0"


def _text(value) -> str:
    """HDF5 string attributes are bytes in old files and str in new ones."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _read_json(text: str | bytes, where: str) -> dict:
    try:
        return json.loads(text)
    except ValueError as e:
        raise ModelError(f"{where}: the architecture is not valid JSON ({e})") from e


class _LegacyWeights:
    """Weights in the Keras 2 / legacy layout: `group[layer]` lists its `weight_names`."""

    def __init__(self, group: h5py.Group, where: str):
        self.group, self.where, self.used = group, where, set()

    def __call__(self, layer: KerasLayer) -> dict[str, np.ndarray]:
        roles = weight_roles(layer)
        if layer.name not in self.group:
            raise ModelError(f"{self.where}: no weights for layer {layer.name!r} (expected "
                             f"{', '.join(roles)}): the weights do not match the architecture")
        self.used.add(layer.name)
        g = self.group[layer.name]
        names = [_text(n) for n in g.attrs.get("weight_names", [])]
        if len(names) != len(roles):
            raise ModelError(f"{self.where}: layer {layer.name!r} has {len(names)} stored weights "
                             f"{names}, the architecture needs {len(roles)} ({', '.join(roles)})")
        out = {}
        for role, name in zip(roles, names):
            if name not in g:
                raise ModelError(f"{self.where}: weight {layer.name}/{name} is listed but missing "
                                 "(truncated or corrupt file?)")
            out[role] = np.asarray(g[name])
            check_finite(out[role], f"{layer.name}/{name}", self.where)
        return out

    def unused(self) -> list[str]:
        """Layers with stored weights that the architecture never asked for."""
        return sorted(name for name, g in self.group.items() if name not in self.used
                      and isinstance(g, h5py.Group) and len(g.attrs.get("weight_names", [])))


class _Keras3Weights:
    """Weights in Keras 3 `layers/<group>/vars/<i>` files, matched by the `name` attribute of
    `vars` when the file has it (Keras 3.15 writes it), else by Keras's generated group name."""

    def __init__(self, root: h5py.Group, where: str):
        if "layers" not in root:
            raise ModelError(f"{where}: no 'layers' group: not a Keras 3 weights file")
        self.groups = {key: g["vars"] for key, g in root["layers"].items() if "vars" in g}
        self.by_name = {_text(v.attrs["name"]): key for key, v in self.groups.items()
                        if "name" in v.attrs}
        self.where, self.used = where, set()

    def __call__(self, layer: KerasLayer) -> dict[str, np.ndarray]:
        roles = weight_roles(layer)
        key = self.by_name.get(layer.name) if self.by_name else layer.generated_name
        if key not in self.groups:
            raise ModelError(f"{self.where}: no weights for layer {layer.name!r} (expected "
                             f"{', '.join(roles)}): the weights do not match the architecture")
        self.used.add(key)
        vars_ = self.groups[key]
        if len(vars_) != len(roles):
            raise ModelError(f"{self.where}: layer {layer.name!r} has {len(vars_)} stored "
                             f"variables, the architecture needs {len(roles)} ({', '.join(roles)})")
        out = {}
        for i, role in enumerate(roles):
            out[role] = np.asarray(vars_[str(i)])
            check_finite(out[role], f"{layer.name}/{role} (vars/{i})", self.where)
        return out

    def unused(self) -> list[str]:
        return sorted(key for key, v in self.groups.items() if key not in self.used and len(v))


def _open_h5(source, where: str) -> h5py.File:
    try:
        return h5py.File(source, "r")
    except OSError as e:
        raise ModelError(f"{where}: cannot open as HDF5 (corrupt or truncated file?): {e}") from e


def _from_h5(path: Path, architecture: Path | None) -> Network:
    where = str(path)
    with _open_h5(path, where) as f:
        if architecture is not None:
            config = _read_json(Path(architecture).read_text(), str(architecture))
            where = f"{architecture} + {path}"
        elif "model_config" in f.attrs:
            config = _read_json(_text(f.attrs["model_config"]), where)
        else:
            raise ModelError(f"{where}: a weights-only HDF5 file (no model_config); pass the "
                             "model.to_json() file as --architecture / architecture=")
        version = _text(f.attrs.get("keras_version", "unknown"))
        if "model_weights" in f:
            weights, kind = _LegacyWeights(f["model_weights"], where), "HDF5 full model"
        elif "layer_names" in f.attrs:
            weights, kind = _LegacyWeights(f, where), "HDF5 weights"
        elif "layers" in f:
            weights, kind, version = _Keras3Weights(f, where), ".weights.h5", "3"
        else:
            raise ModelError(f"{where}: no model_weights, layer_names or layers: not a Keras "
                             "weights file")
        return _build(config, weights, where, f"Keras {version} {kind}: {path.name}")


def _from_keras_zip(path: Path, architecture: Path | None) -> Network:
    where = str(path)
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            if "config.json" not in names or "model.weights.h5" not in names:
                raise ModelError(f"{where}: a zip without config.json and model.weights.h5: "
                                 "not a Keras 3 .keras archive")
            config_text = z.read("config.json")
            weights = z.read("model.weights.h5")
            meta = _read_json(z.read("metadata.json"), where) if "metadata.json" in names else {}
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise ModelError(f"{where}: cannot read the .keras archive (corrupt or truncated "
                         f"file?): {e}") from e
    config = _read_json(Path(architecture).read_text() if architecture else config_text, where)
    with _open_h5(io.BytesIO(weights), f"{where}:model.weights.h5") as f:
        return _build(config, _Keras3Weights(f, where), where,
                      f"Keras {meta.get('keras_version', '3')} .keras: {path.name}")


def _build(config: dict, weights, where: str, source: str) -> Network:
    try:
        net = build_network(layer_chain(config, where), weights, where, source)
    except (KeyError, TypeError, IndexError, ValueError) as e:
        # A config or weight entry of an unexpected form: a damaged or foreign file.
        raise ModelError(f"{where}: unexpected model structure ({type(e).__name__}: {e}); "
                         "the file is damaged or not a Keras Conv1D model") from e
    except OSError as e:
        raise ModelError(f"{where}: cannot read weights (corrupt or truncated file?): {e}") from e
    if weights.unused():
        raise ModelError(f"{where}: weights are stored for layers {weights.unused()} that the "
                         "architecture does not have: the architecture does not match the weights")
    return net


def read_keras(path: str | os.PathLike, architecture: str | os.PathLike | None = None) -> Network:
    """Read a Keras model file (any format in the module docstring) as an nmjax Network."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such file" + (" (a directory: TensorFlow SavedModel "
                                                    "directories are not supported; save as "
                                                    ".keras or .h5)" if path.is_dir() else ""))
    if architecture is not None and not Path(architecture).is_file():
        raise ModelError(f"{architecture}: no such architecture file")
    with path.open("rb") as fh:
        head = fh.read(8)
    if head.startswith(b"\x89HDF"):
        return _from_h5(path, architecture)
    if head.startswith(b"PK"):
        return _from_keras_zip(path, architecture)
    raise ModelError(f"{path}: not an HDF5 file or a .keras archive (first bytes {head!r}); "
                     "corrupt, truncated or not a Keras model")


# ---------------------------------------------------------------------------------------
# Export: nmjax Network -> Keras 2 full-model HDF5
# ---------------------------------------------------------------------------------------
_KERAS2_ACTIVATION = {"silu": "swish"}


def _is_checkpoint(path: Path) -> bool:
    """An nmjax checkpoint is an .npz (zip) holding `__config__.npy`."""
    try:
        with zipfile.ZipFile(path) as z:
            return "__config__.npy" in z.namelist()
    except (zipfile.BadZipFile, OSError, EOFError):
        return path.suffix == ".npz"  # damaged checkpoint: let load_checkpoint name the problem


def read_model(path: str | os.PathLike, architecture: str | os.PathLike | None = None) -> Network:
    """Read an nmjax checkpoint (.npz), a Keras 2/3 HDF5 model, a Keras 3 `.keras` archive, or
    a weights-only HDF5 file plus its `model.to_json()` file (`architecture`)."""
    path = Path(path)
    if path.is_file() and _is_checkpoint(path):
        if architecture is not None:
            raise ModelError(f"{path}: an nmjax checkpoint carries its architecture; do not "
                             "pass an architecture file with it")
        try:
            return load_checkpoint(path)
        except (zipfile.BadZipFile, EOFError, KeyError) as e:
            raise ModelError(f"{path}: cannot read nmjax checkpoint (corrupt or truncated "
                             f"file?): {e}") from e
    return read_keras(path, architecture)


def _layer_entry(class_name: str, config: dict) -> dict:
    return {"module": "keras.layers", "class_name": class_name, "config": config,
            "registered_name": None}


def _activation_layers(name: str, layer_name: str) -> tuple[str, list]:
    """(activation for a layer config, extra layers) for an nmjax activation name."""
    slope = leaky_slope(name)
    if slope is not None:
        return "linear", [(_layer_entry("LeakyReLU", {"name": layer_name, "trainable": True,
                                                      "dtype": "float32", "alpha": slope}), {})]
    return _KERAS2_ACTIVATION.get(name, name), []


def _affine_layer(name: str, scale, shift) -> tuple[dict, dict]:
    """A BatchNormalization that computes x * scale + shift exactly (mean 0, variance 1, eps 0)."""
    cfg = {"name": name, "trainable": True, "dtype": "float32", "axis": -1, "momentum": 0.99,
           "epsilon": 0.0, "center": True, "scale": True}
    n = len(scale)
    return _layer_entry("BatchNormalization", cfg), {
        "gamma:0": scale, "beta:0": shift, "moving_mean:0": np.zeros(n, np.float32),
        "moving_variance:0": np.ones(n, np.float32)}


def _keras2_layers(net: Network) -> list[tuple[dict, dict]]:
    """(layer config entry, {weight name: array}) for every layer of the exported Sequential."""
    cfg, p = net.config, net.params
    length = cfg.input_length
    out = [(_layer_entry("InputLayer", {"batch_input_shape": [None, length, 4],
                                        "dtype": "float32", "sparse": False, "ragged": False,
                                        "name": "dna"}), {})]
    for l, spec in enumerate(cfg.convs, start=1):
        act, extra = _activation_layers(spec.activation, f"conv{l}_activation")
        out.append((_layer_entry("Conv1D", {
            "name": f"conv{l}", "trainable": True, "dtype": "float32", "filters": spec.channels,
            "kernel_size": [spec.kernel_width], "strides": [1], "padding": "valid",
            "data_format": "channels_last", "dilation_rate": [1], "groups": 1,
            "activation": act, "use_bias": True}),
            {"kernel:0": p[f"conv{l}"]["kernel"], "bias:0": p[f"conv{l}"]["bias"]}))
        out.extend(extra)
        if spec.post_affine:
            out.append(_affine_layer(f"conv{l}_post_affine", p[f"conv{l}_post_scale"],
                                     p[f"conv{l}_post_shift"]))
        if spec.pool > 1:
            out.append((_layer_entry("MaxPooling1D", {
                "name": f"pool{l}", "trainable": True, "dtype": "float32",
                "pool_size": [spec.pool], "strides": [spec.pool], "padding": "valid",
                "data_format": "channels_last"}), {}))
    for j, op in enumerate(cfg.head, start=1):
        name = f"head{j}"
        if op.kind == "flatten":
            out.append((_layer_entry("Flatten", {"name": name, "trainable": True,
                                                 "dtype": "float32",
                                                 "data_format": "channels_last"}), {}))
        elif op.kind == "dense":
            act, extra = _activation_layers(op.activation, f"{name}_activation")
            out.append((_layer_entry("Dense", {"name": name, "trainable": True,
                                               "dtype": "float32", "units": op.units,
                                               "activation": act, "use_bias": True}),
                        {"kernel:0": p[name]["kernel"], "bias:0": p[name]["bias"]}))
            out.extend(extra)
        elif op.kind == "affine":
            out.append(_affine_layer(name, p[f"{name}_scale"], p[f"{name}_shift"]))
        elif op.kind == "activation":
            act, extra = _activation_layers(op.activation, name)
            out.extend(extra or [(_layer_entry("Activation", {"name": name, "trainable": True,
                                                              "dtype": "float32",
                                                              "activation": act}), {})])
        else:
            cls = {"global_max_pool": "GlobalMaxPooling1D",
                   "global_average_pool": "GlobalAveragePooling1D"}[op.kind]
            out.append((_layer_entry(cls, {"name": name, "trainable": True, "dtype": "float32",
                                           "data_format": "channels_last",
                                           "keepdims": False}), {}))
    return out


def export_keras2_h5(net: Network, path: str | os.PathLike) -> None:
    """Write `net` as a Keras 2 full-model HDF5 file (Sequential; `keras.models.load_model`
    of tf-keras and Keras 3 read it), atomically. BatchNorm is already folded into the convs;
    a post-activation or head affine becomes a BatchNormalization with mean 0, variance 1,
    epsilon 0."""
    layers = _keras2_layers(net)
    model_config = {"class_name": "Sequential",
                    "config": {"name": "sequential", "layers": [c for c, _ in layers]}}
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["model_config"] = json.dumps(model_config)
            f.attrs["keras_version"] = KERAS2_VERSION
            f.attrs["backend"] = "tensorflow"
            mw = f.create_group("model_weights")
            names = [c["config"]["name"] for c, _ in layers[1:]]
            mw.attrs["layer_names"] = np.array(names, dtype=h5py.string_dtype())
            mw.attrs["keras_version"] = KERAS2_VERSION
            mw.attrs["backend"] = "tensorflow"
            for (entry, weights), name in zip(layers[1:], names):
                g = mw.create_group(name)
                g.attrs["weight_names"] = np.array([f"{name}/{w}" for w in weights],
                                                   dtype=h5py.string_dtype())
                for w, value in weights.items():
                    g.create_dataset(f"{name}/{w}", data=np.asarray(value, np.float32))


# ---------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m converters.keras",
                                     description="Convert a Keras model file to an nmjax "
                                                 "checkpoint (.npz).")
    parser.add_argument("model", help="Keras .keras / .h5 file, weights-only .h5, or nmjax .npz")
    parser.add_argument("out", help="nmjax checkpoint to write (.npz)")
    parser.add_argument("--architecture", default=None,
                        help="model.to_json() file, for a weights-only HDF5 model")
    args = parser.parse_args(argv)
    try:
        net = read_model(args.model, args.architecture)
        net.save(args.out)
    except NmjaxError as e:
        print(f"converters.keras: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {net!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
