"""Keras architecture JSON: the chain of layers and what each layer means to nmjax.

`layer_chain` turns a Sequential or single-chain functional model config (Keras 2 or 3) into
the ordered list of layers; the readers below give a layer's activation, conv shape, pool size
or BatchNorm affine, and refuse, with a ModelError naming the layer, the setting and the
reason, what NeuronMotif cannot decode. `nmjax`'s block form is built from them by
`converters.keras_fold`.
"""
from __future__ import annotations

import dataclasses
import re

import numpy as np

from nmjax.activations import is_known_activation
from nmjax.errors import ModelError

# Layers that are the identity at inference time.
IDENTITY_LAYERS = {"Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout",
                   "AlphaDropout"}
UNSUPPORTED = {
    "Conv2D": "a 2-D convolution; NeuronMotif decodes Conv1D layers over one-hot DNA",
    "Conv3D": "a 3-D convolution; NeuronMotif decodes Conv1D layers over one-hot DNA",
    "SeparableConv1D": "a separable convolution; NeuronMotif decodes plain Conv1D layers",
    "DepthwiseConv1D": "a depthwise convolution; NeuronMotif decodes plain Conv1D layers",
    "Conv1DTranspose": "a transposed convolution; NeuronMotif decodes plain Conv1D layers",
    "LSTM": "a recurrent layer: its output depends on the whole sequence, not on a fixed "
            "receptive-field window, so it has no motif per neuron",
    "GRU": "a recurrent layer: its output depends on the whole sequence, not on a fixed "
           "receptive-field window, so it has no motif per neuron",
    "SimpleRNN": "a recurrent layer: its output depends on the whole sequence, not on a fixed "
                 "receptive-field window, so it has no motif per neuron",
    "Bidirectional": "a recurrent layer: its output depends on the whole sequence, not on a "
                     "fixed receptive-field window, so it has no motif per neuron",
    "AveragePooling1D": "average pooling; NeuronMotif's decoupling assumes max pooling "
                        "(one winning shift per pooling window)",
    "Attention": "attention mixes all positions; NeuronMotif needs a fixed receptive field",
    "MultiHeadAttention": "attention mixes all positions; NeuronMotif needs a fixed receptive field",
}


def _snake_case(name: str) -> str:
    """Keras's generated group name for a layer class (Conv1D -> conv1d)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


@dataclasses.dataclass(frozen=True)
class KerasLayer:
    """One layer of the chain: class, name, config dict, and its Keras 3 weights-file group name."""

    class_name: str
    name: str
    config: dict
    generated_name: str  # Keras 3 weights-file group: snake_case(class) + _n per class


def _inbound_names(node) -> list[str]:
    """Names of the layers feeding one inbound node (Keras 2 lists or Keras 3 dicts)."""
    names: list[str] = []

    def walk(obj):
        if isinstance(obj, dict):
            if obj.get("class_name") == "__keras_tensor__":
                names.append(obj["config"]["keras_history"][0])
            else:
                for v in obj.values():
                    walk(v)
        elif isinstance(obj, list):
            if len(obj) >= 3 and isinstance(obj[0], str) and isinstance(obj[1], int):
                names.append(obj[0])  # Keras 2: [layer_name, node_index, tensor_index, kwargs]
            else:
                for v in obj:
                    walk(v)

    walk(node)
    return names


def _endpoint_names(spec) -> list[str]:
    """Names in `input_layers` / `output_layers` (Keras 2: [[n, 0, 0]]; Keras 3: [n, 0, 0])."""
    if spec and isinstance(spec[0], str):
        spec = [spec]
    return [s[0] for s in spec]


def layer_chain(model_config: dict, where: str) -> list[KerasLayer]:
    """The layers of a Sequential or single-chain functional model, input first."""
    cls = model_config.get("class_name")
    cfg = model_config.get("config")
    if cls is None or cfg is None:
        raise ModelError(f"{where}: the architecture JSON has no class_name/config: not a "
                         "Keras model configuration")
    if cls == "Sequential":
        raw = cfg["layers"] if isinstance(cfg, dict) else cfg  # Keras 2.0-2.2: a bare list
        chain = _keras_layers(raw)
    elif cls in ("Functional", "Model"):
        chain = _functional_chain(cfg, where)
    else:
        raise ModelError(f"{where}: model class {cls!r} is not supported; save the model as a "
                         "Keras Sequential or functional model (a subclassed model has no "
                         "readable architecture)")
    for layer in chain:
        if layer.class_name in ("Sequential", "Functional", "Model"):
            raise ModelError(f"{where}: layer {layer.name!r} is a nested model; NeuronMotif "
                             "reads flat models: rebuild it without nesting")
    return chain


def _keras_layers(entries: list[dict]) -> list[KerasLayer]:
    """KerasLayer per config entry; generated names count each class in order (conv1d, conv1d_1)."""
    seen: dict[str, int] = {}
    out = []
    for entry in entries:
        base = _snake_case(entry["class_name"])
        count = seen.get(base, 0)
        seen[base] = count + 1
        generated = base if count == 0 else f"{base}_{count}"
        config = entry.get("config", {})
        out.append(KerasLayer(entry["class_name"], config.get("name") or entry.get("name")
                              or generated, config, generated))
    return out


def _functional_chain(cfg: dict, where: str) -> list[KerasLayer]:
    entries = cfg["layers"]
    layers = {layer.name: layer for layer in _keras_layers(entries)}
    inputs = _endpoint_names(cfg.get("input_layers", []))
    outputs = _endpoint_names(cfg.get("output_layers", []))
    if len(inputs) != 1 or len(outputs) != 1:
        raise ModelError(f"{where}: the model has {len(inputs)} inputs and {len(outputs)} "
                         "outputs; NeuronMotif reads models with one DNA input and one output")
    feeds: dict[str, str] = {}
    consumers: dict[str, list[str]] = {}
    for e in entries:
        name = e.get("name") or e["config"]["name"]
        nodes = e.get("inbound_nodes", [])
        if len(nodes) > 1:
            raise ModelError(f"{where}: layer {name!r} is called {len(nodes)} times (a shared "
                             "layer); NeuronMotif decodes a single chain of layers")
        sources = _inbound_names(nodes[0]) if nodes else []
        if len(sources) > 1:
            raise ModelError(f"{where}: layer {name!r} ({e['class_name']}) merges "
                             f"{len(sources)} branches ({', '.join(sources)}); NeuronMotif "
                             "decodes a single chain of layers without branches or skip "
                             "connections")
        if sources:
            feeds[name] = sources[0]
            consumers.setdefault(sources[0], []).append(name)
    for name, users in consumers.items():
        if len(users) > 1:
            raise ModelError(f"{where}: the output of layer {name!r} feeds {len(users)} layers "
                             f"({', '.join(users)}): a branch; NeuronMotif decodes a single chain "
                             "of layers without branches or skip connections")
    chain = [outputs[0]]
    while chain[-1] in feeds:
        chain.append(feeds[chain[-1]])
    if chain[-1] != inputs[0]:
        raise ModelError(f"{where}: the output {outputs[0]!r} does not lead back to the input "
                         f"{inputs[0]!r} through a single chain")
    unused = sorted(set(layers) - set(chain))
    if unused:
        raise ModelError(f"{where}: layers {unused} are not on the input-output chain; "
                         "NeuronMotif decodes a single chain of layers")
    return [layers[n] for n in reversed(chain)]


def input_shape(chain: list[KerasLayer], where: str) -> tuple[int | None, int]:
    """(length or None, channels) of the model input."""
    for layer in chain:
        shape = layer.config.get("batch_shape") or layer.config.get("batch_input_shape")
        if shape is not None:
            break
    else:
        raise ModelError(f"{where}: the architecture does not state the input shape "
                         "(no batch_shape / batch_input_shape)")
    if len(shape) != 3:
        raise ModelError(f"{where}: input layer {layer.name!r} has shape {list(shape)[1:]}; "
                         "NeuronMotif decodes models whose input is one-hot DNA of shape "
                         "(length, 4)")
    if shape[2] != 4:
        raise ModelError(f"{where}: input layer {layer.name!r} has {shape[2]} channels; "
                         "NeuronMotif decodes one-hot DNA with 4 channels (A, C, G, T)")
    return shape[1], 4


def weight_roles(layer: KerasLayer) -> list[str]:
    """The stored weights of a layer, in Keras's order."""
    c = layer.config
    if layer.class_name in ("Conv1D", "Dense"):
        return ["kernel"] + (["bias"] if c.get("use_bias", True) else [])
    if layer.class_name == "BatchNormalization":
        return ((["gamma"] if c.get("scale", True) else []) +
                (["beta"] if c.get("center", True) else []) + ["moving_mean", "moving_variance"])
    return []


def activation_name(value, layer: KerasLayer, where: str) -> str:
    """nmjax activation name for a Keras activation (string or serialized dict)."""
    if isinstance(value, dict):  # {"class_name": ..., "config": "relu" or {"name": ...}}
        cfg = value.get("config")
        value = cfg if isinstance(cfg, str) else (cfg or {}).get("name") or value.get("class_name")
    name = str(value or "linear")
    if name == "leaky_relu":
        name = "leaky_relu:0.2"  # keras.activations.leaky_relu default slope
    if not is_known_activation(name):
        raise ModelError(f"{where}: layer {layer.name!r} uses activation {name!r}, which nmjax "
                         "does not implement")
    return name


def _leaky(slope: float) -> str:
    """Keras computes in float32, so the slope's shortest float32 form is exact (0.3, not
    0.30000001192092896 as tf-keras stores it)."""
    return f"leaky_relu:{str(np.float32(slope))}"


def layer_activation(layer: KerasLayer, where: str) -> str:
    c = layer.config
    if layer.class_name == "Activation":
        return activation_name(c.get("activation"), layer, where)
    if layer.class_name == "ReLU":
        if c.get("max_value") is not None or float(c.get("threshold") or 0) != 0:
            raise ModelError(f"{where}: layer {layer.name!r} (ReLU) has max_value="
                             f"{c.get('max_value')} threshold={c.get('threshold')}; only a plain "
                             "or leaky ReLU is supported")
        slope = float(c.get("negative_slope") or 0)
        return _leaky(slope) if slope else "relu"
    if layer.class_name == "LeakyReLU":
        return _leaky(float(c.get("negative_slope", c.get("alpha", 0.3))))
    raise AssertionError(layer.class_name)


def _first(value):
    """Keras stores 1-D sizes as [n] (and Keras 2.0 as n)."""
    return value[0] if isinstance(value, (list, tuple)) else value


def conv_shape(layer: KerasLayer, where: str) -> tuple[int, int]:
    """(kernel width, filters) of a decodable Conv1D, else a ModelError saying why not."""
    c = layer.config

    def one(key, default):
        return _first(c.get(key, default))

    bad = {"strides": (one("strides", 1), 1, "a stride above 1 skips positions, so neurons of "
                       "one layer no longer share one receptive field per output position"),
           "dilation_rate": (one("dilation_rate", 1), 1, "a dilated kernel has gaps the "
                             "receptive-field formula does not model"),
           "padding": (c.get("padding", "valid"), "valid", "padded positions are not DNA, so a "
                       "window of the receptive-field length gives no single output"),
           "groups": (c.get("groups", 1), 1, "grouped convolutions are not supported"),
           "data_format": (c.get("data_format", "channels_last"), "channels_last",
                           "nmjax reads (length, 4) inputs")}
    for key, (value, want, why) in bad.items():
        if value != want:
            raise ModelError(f"{where}: layer {layer.name!r} (Conv1D) has {key}={value!r}; "
                             f"NeuronMotif needs {key}={want!r}: {why}")
    return int(one("kernel_size", None)), int(c["filters"])


def pool_size(layer: KerasLayer, where: str) -> int:
    c = layer.config
    pool = int(_first(c.get("pool_size", 2)))
    stride = _first(c.get("strides")) or pool
    if int(stride) != pool:
        raise ModelError(f"{where}: layer {layer.name!r} (MaxPooling1D) has pool_size={pool} "
                         f"but strides={stride}; NeuronMotif needs the stride equal to the pool "
                         "size (non-overlapping windows) to decouple the shifts")
    if c.get("padding", "valid") != "valid":
        raise ModelError(f"{where}: layer {layer.name!r} (MaxPooling1D) has padding="
                         f"{c.get('padding')!r}; NeuronMotif needs padding='valid'")
    if c.get("data_format", "channels_last") != "channels_last":
        raise ModelError(f"{where}: layer {layer.name!r} (MaxPooling1D) has data_format="
                         f"{c.get('data_format')!r}; nmjax reads channels_last")
    return pool


def bn_affine(layer: KerasLayer, w: dict[str, np.ndarray], where: str, in_head: bool
               ) -> tuple[np.ndarray, np.ndarray]:
    """BatchNorm at inference as y = x * scale + shift (float64), with the file's epsilon."""
    axis = layer.config.get("axis", -1)
    axis = _first(axis) if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
    if axis not in ((-1, 1, 2) if in_head else (-1, 2)):
        raise ModelError(f"{where}: layer {layer.name!r} (BatchNormalization) normalises axis "
                         f"{axis}; nmjax supports the channel axis (-1)")
    eps = float(layer.config.get("epsilon", 1e-3))
    mean = w["moving_mean"].astype(np.float64)
    var = w["moving_variance"].astype(np.float64)
    gamma = w["gamma"].astype(np.float64) if "gamma" in w else np.ones_like(mean)
    beta = w["beta"].astype(np.float64) if "beta" in w else np.zeros_like(mean)
    scale = gamma / np.sqrt(var + eps)
    return scale, beta - mean * scale


def check_supported(chain: list[KerasLayer], where: str) -> None:
    """Refuse a chain holding a layer NeuronMotif cannot decode, saying why."""
    for layer in chain:
        if layer.class_name in UNSUPPORTED:
            raise ModelError(f"{where}: layer {layer.name!r} ({layer.class_name}) is not "
                             f"supported: {UNSUPPORTED[layer.class_name]}")
