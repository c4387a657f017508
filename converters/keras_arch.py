"""Keras architecture JSON -> nmjax `NetworkConfig` + params (formats differ only in where weights live).

`layer_chain` turns a Sequential or single-chain functional model config (Keras 2 or 3) into
the ordered list of layers; `build_network` walks that chain with the weights of each layer
and folds it into nmjax's block form:

    Conv1D -> [BatchNorm: folded into the conv] -> activation -> [BatchNorm: post affine]
           -> MaxPooling1D -> [BatchNorm: folded into the next conv's input]

Everything NeuronMotif cannot decode is refused with a ModelError naming the layer, the
setting and the reason.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Callable

import numpy as np

from nmjax.errors import ModelError
from nmjax.network import ConvSpec, HeadOp, Network, NetworkConfig, check_params, is_known_activation

# Layers that are the identity at inference time.
IDENTITY_LAYERS = {"Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout",
                   "AlphaDropout"}
# Activations f with max(f(a), f(b)) == f(max(a, b)): an activation after MaxPooling1D may
# move before it.
_MONOTONE = {"linear", "relu", "sigmoid", "tanh", "elu", "selu", "softplus", "exponential"}

_WHY_NOT = {
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


def _activation_name(value, layer: KerasLayer, where: str) -> str:
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


def _layer_activation(layer: KerasLayer, where: str) -> str:
    c = layer.config
    if layer.class_name == "Activation":
        return _activation_name(c.get("activation"), layer, where)
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


def _check_conv(layer: KerasLayer, where: str) -> tuple[int, int]:
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


def _pool_size(layer: KerasLayer, where: str) -> int:
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


def _bn_affine(layer: KerasLayer, w: dict[str, np.ndarray], where: str, in_head: bool
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


@dataclasses.dataclass
class _Block:
    """A conv block under construction (mutable only inside build_network)."""

    name: str
    kernel: np.ndarray  # (k, cin, cout) float64
    bias: np.ndarray
    activation: str = "linear"
    post: tuple[np.ndarray, np.ndarray] | None = None
    pool: int = 1
    stage: str = "conv"  # conv -> act -> post -> pool


def build_network(chain: list[KerasLayer], get_weights: Callable[[KerasLayer], dict[str, np.ndarray]],
                  where: str, source: str) -> Network:
    """Fold a layer chain and its weights into an nmjax Network (see module docstring)."""
    for layer in chain:
        if layer.class_name in _WHY_NOT:
            raise ModelError(f"{where}: layer {layer.name!r} ({layer.class_name}) is not "
                             f"supported: {_WHY_NOT[layer.class_name]}")
    length, _ = input_shape(chain, where)
    blocks: list[_Block] = []
    head: list[HeadOp] = []
    head_params: dict = {}
    pending_input: tuple[np.ndarray, np.ndarray] | None = None  # BN after a pool
    channels = 4

    def start_head():
        nonlocal pending_input
        if not blocks:
            raise ModelError(f"{where}: the model has no Conv1D layer before its head; "
                             "NeuronMotif decodes convolutional neurons")
        if pending_input is not None:
            add_affine(pending_input, f"{blocks[-1].name}+bn")
            pending_input = None

    def add_affine(affine, name):
        j = len(head) + 1
        head.append(HeadOp("affine", units=len(affine[0]), name=name))
        head_params[f"head{j}_scale"] = affine[0]
        head_params[f"head{j}_shift"] = affine[1]

    for layer in chain:
        cls, block = layer.class_name, (blocks[-1] if blocks else None)
        if cls == "InputLayer" or cls in IDENTITY_LAYERS:
            continue
        if cls == "Conv1D":
            if head:
                raise ModelError(f"{where}: layer {layer.name!r} (Conv1D) comes after the dense "
                                 "head; NeuronMotif decodes conv layers that precede the head")
            width, filters = _check_conv(layer, where)
            w = get_weights(layer)
            kernel = w["kernel"].astype(np.float64)
            if kernel.shape != (width, channels, filters):
                raise ModelError(f"{where}: layer {layer.name!r} kernel has shape "
                                 f"{kernel.shape}, the architecture needs "
                                 f"{(width, channels, filters)}")
            bias = w["bias"].astype(np.float64) if "bias" in w else np.zeros(filters)
            if pending_input is not None:  # BN between pool and conv: x*s+t into the kernel
                s, t = pending_input
                bias = bias + np.einsum("kcf,c->f", kernel, t)
                kernel = kernel * s[None, :, None]
                pending_input = None
            act = _activation_name(layer.config.get("activation"), layer, where)
            blocks.append(_Block(layer.name, kernel, bias, act,
                                 stage="conv" if act == "linear" else "act"))
            channels = filters
        elif cls == "BatchNormalization":
            affine = _bn_affine(layer, get_weights(layer), where, bool(head))
            if head:
                add_affine(affine, layer.name)
            elif block is None or block.stage == "pool":
                pending_input = affine if pending_input is None else (
                    pending_input[0] * affine[0], pending_input[1] * affine[0] + affine[1])
            elif block.stage == "conv":
                block.kernel = block.kernel * affine[0]
                block.bias = block.bias * affine[0] + affine[1]
            else:
                block.post = affine if block.post is None else (
                    block.post[0] * affine[0], block.post[1] * affine[0] + affine[1])
                block.stage = "post"
        elif cls in ("Activation", "ReLU", "LeakyReLU"):
            act = _layer_activation(layer, where)
            if act == "linear":
                continue
            if head:
                head.append(HeadOp("activation", activation=act, name=layer.name))
            elif block is None:
                raise ModelError(f"{where}: layer {layer.name!r} applies {act} to the input "
                                 "before any Conv1D; NeuronMotif reads one-hot DNA directly")
            elif block.stage == "conv":
                block.activation, block.stage = act, "act"
            elif (block.stage == "pool" and block.activation == "linear" and block.post is None
                  and pending_input is None and act.split(":")[0] in _MONOTONE | {"leaky_relu"}
                  and not act.startswith("leaky_relu:-")):
                block.activation = act  # monotone activation commutes with max pooling
            else:
                raise ModelError(f"{where}: layer {layer.name!r} applies a second activation "
                                 f"({act}) in the block of conv layer {block.name!r}; nmjax "
                                 "supports one activation per conv block")
        elif cls == "MaxPooling1D":
            pool = _pool_size(layer, where)
            if head or block is None:
                raise ModelError(f"{where}: layer {layer.name!r} (MaxPooling1D) is not after a "
                                 "conv block; NeuronMotif decodes pooling between conv layers")
            if pending_input is not None:
                raise ModelError(f"{where}: layer {layer.name!r} pools after a BatchNormalization "
                                 "that follows a pooling layer; nmjax cannot fold that BatchNorm")
            block.pool = block.pool * pool if block.stage == "pool" else pool
            block.stage = "pool"
        elif cls == "Flatten":
            start_head()
            head.append(HeadOp("flatten", name=layer.name))
        elif cls in ("GlobalMaxPooling1D", "GlobalAveragePooling1D"):
            if layer.config.get("keepdims"):
                raise ModelError(f"{where}: layer {layer.name!r} keeps dims; not supported")
            start_head()
            kind = "global_max_pool" if cls == "GlobalMaxPooling1D" else "global_average_pool"
            head.append(HeadOp(kind, name=layer.name))
        elif cls == "Dense":
            start_head()
            w = get_weights(layer)
            units = int(layer.config["units"])
            kernel = w["kernel"]
            if kernel.ndim != 2 or kernel.shape[1] != units:
                raise ModelError(f"{where}: layer {layer.name!r} (Dense) kernel has shape "
                                 f"{kernel.shape}, the architecture needs (*, {units})")
            j = len(head) + 1
            head.append(HeadOp("dense", units=units, name=layer.name,
                               activation=_activation_name(layer.config.get("activation"), layer,
                                                           where)))
            head_params[f"head{j}"] = {"kernel": kernel, "bias": w.get("bias", np.zeros(units))}
        else:
            raise ModelError(f"{where}: layer {layer.name!r} ({cls}) is not supported: nmjax "
                             "reads chains of Conv1D, BatchNormalization, activation, "
                             "MaxPooling1D, Dropout, Flatten, global pooling and Dense layers")
    if not blocks:
        raise ModelError(f"{where}: the model has no Conv1D layer; NeuronMotif decodes "
                         "convolutional neurons")
    if pending_input is not None:
        add_affine(pending_input, f"{blocks[-1].name}+bn")

    convs, params, cin = [], {}, 4
    for l, b in enumerate(blocks, start=1):
        convs.append(ConvSpec(kernel_width=b.kernel.shape[0], channels=b.kernel.shape[2],
                              in_channels=cin, activation=b.activation, pool=b.pool,
                              post_affine=b.post is not None, name=b.name))
        params[f"conv{l}"] = {"kernel": b.kernel, "bias": b.bias}
        if b.post is not None:
            params[f"conv{l}_post_scale"], params[f"conv{l}_post_shift"] = b.post
        cin = b.kernel.shape[2]
    params.update(head_params)
    params = _as_float32(params)
    config = NetworkConfig(convs=tuple(convs), head=tuple(head),
                           input_length=int(length) if length else None, source=source)
    check_params(config, params, where)
    return Network(config, params)


def _as_float32(tree: dict) -> dict:
    return {k: _as_float32(v) if isinstance(v, dict) else np.asarray(v, np.float32)
            for k, v in tree.items()}
