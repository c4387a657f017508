"""A Keras layer chain and its weights folded into an nmjax `Network` (its block form):

    Conv1D -> [BatchNorm: folded into the conv] -> activation -> [BatchNorm: post affine]
           -> MaxPooling1D -> [BatchNorm: folded into the next conv's input]

then the head (flatten or global pooling, dense layers, their activations and BatchNorms).
Everything NeuronMotif cannot decode is refused with a ModelError naming the layer, the
setting and the reason.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from nmjax.activations import commutes_with_max_pool
from nmjax.errors import ModelError
from nmjax.network import ConvSpec, HeadOp, Network, NetworkConfig, check_params

from .keras_arch import (IDENTITY_LAYERS, KerasLayer, activation_name, bn_affine,
                         check_supported, conv_shape, input_shape, layer_activation, pool_size)

Affine = tuple[np.ndarray, np.ndarray]


def _then(first: Affine, second: Affine) -> Affine:
    """The affine x * s + t of `first` followed by `second`."""
    return first[0] * second[0], first[1] * second[0] + second[1]


@dataclasses.dataclass
class _Block:
    """A conv block under construction."""

    name: str
    kernel: np.ndarray  # (k, cin, cout) float64
    bias: np.ndarray
    activation: str = "linear"
    post: Affine | None = None
    pool: int = 1
    stage: str = "conv"  # conv -> act -> post -> pool


class _Folder:
    """Walks the chain layer by layer, folding each into the blocks or the head."""

    def __init__(self, get_weights: Callable[[KerasLayer], dict[str, np.ndarray]], where: str):
        self.get_weights, self.where = get_weights, where
        self.blocks: list[_Block] = []
        self.head: list[HeadOp] = []
        self.head_params: dict = {}
        self.pending_input: Affine | None = None  # BN after a pool
        self.channels = 4

    def fold(self, layer: KerasLayer) -> None:
        cls = layer.class_name
        if cls == "InputLayer" or cls in IDENTITY_LAYERS:
            return
        if cls in ("Activation", "ReLU", "LeakyReLU"):
            cls = "activation"
        elif cls in ("GlobalMaxPooling1D", "GlobalAveragePooling1D"):
            cls = "global_pool"
        step = {"Conv1D": self.conv, "BatchNormalization": self.batch_norm,
                "activation": self.activation, "MaxPooling1D": self.max_pool,
                "Flatten": self.flatten, "global_pool": self.global_pool,
                "Dense": self.dense}.get(cls)
        if step is None:
            raise ModelError(f"{self.where}: layer {layer.name!r} ({cls}) is not supported: nmjax "
                             "reads chains of Conv1D, BatchNormalization, activation, "
                             "MaxPooling1D, Dropout, Flatten, global pooling and Dense layers")
        step(layer)

    @property
    def block(self) -> _Block | None:
        return self.blocks[-1] if self.blocks else None

    def add_affine(self, affine: Affine, name: str) -> None:
        j = len(self.head) + 1
        self.head.append(HeadOp("affine", units=len(affine[0]), name=name))
        self.head_params[f"head{j}_scale"] = affine[0]
        self.head_params[f"head{j}_shift"] = affine[1]

    def start_head(self) -> None:
        if not self.blocks:
            raise ModelError(f"{self.where}: the model has no Conv1D layer before its head; "
                             "NeuronMotif decodes convolutional neurons")
        if self.pending_input is not None:
            self.add_affine(self.pending_input, f"{self.blocks[-1].name}+bn")
            self.pending_input = None

    def conv(self, layer: KerasLayer) -> None:
        where = self.where
        if self.head:
            raise ModelError(f"{where}: layer {layer.name!r} (Conv1D) comes after the dense "
                             "head; NeuronMotif decodes conv layers that precede the head")
        width, filters = conv_shape(layer, where)
        w = self.get_weights(layer)
        kernel = w["kernel"].astype(np.float64)
        if kernel.shape != (width, self.channels, filters):
            raise ModelError(f"{where}: layer {layer.name!r} kernel has shape "
                             f"{kernel.shape}, the architecture needs "
                             f"{(width, self.channels, filters)}")
        bias = w["bias"].astype(np.float64) if "bias" in w else np.zeros(filters)
        if self.pending_input is not None:  # BN between pool and conv: x*s+t into the kernel
            s, t = self.pending_input
            bias = bias + np.einsum("kcf,c->f", kernel, t)
            kernel = kernel * s[None, :, None]
            self.pending_input = None
        act = activation_name(layer.config.get("activation"), layer, where)
        self.blocks.append(_Block(layer.name, kernel, bias, act,
                                  stage="conv" if act == "linear" else "act"))
        self.channels = filters

    def batch_norm(self, layer: KerasLayer) -> None:
        affine = bn_affine(layer, self.get_weights(layer), self.where, bool(self.head))
        block = self.block
        if self.head:
            self.add_affine(affine, layer.name)
        elif block is None or block.stage == "pool":
            self.pending_input = affine if self.pending_input is None else _then(
                self.pending_input, affine)
        elif block.stage == "conv":
            block.kernel = block.kernel * affine[0]
            block.bias = block.bias * affine[0] + affine[1]
        else:
            block.post = affine if block.post is None else _then(block.post, affine)
            block.stage = "post"

    def activation(self, layer: KerasLayer) -> None:
        where, block = self.where, self.block
        act = layer_activation(layer, where)
        if act == "linear":
            return
        if self.head:
            self.head.append(HeadOp("activation", activation=act, name=layer.name))
        elif block is None:
            raise ModelError(f"{where}: layer {layer.name!r} applies {act} to the input "
                             "before any Conv1D; NeuronMotif reads one-hot DNA directly")
        elif block.stage == "conv":
            block.activation, block.stage = act, "act"
        elif (block.stage == "pool" and block.activation == "linear" and block.post is None
              and self.pending_input is None and commutes_with_max_pool(act)):
            block.activation = act  # it commutes with the max pooling before it
        else:
            raise ModelError(f"{where}: layer {layer.name!r} applies a second activation "
                             f"({act}) in the block of conv layer {block.name!r}; nmjax "
                             "supports one activation per conv block")

    def max_pool(self, layer: KerasLayer) -> None:
        where, block = self.where, self.block
        pool = pool_size(layer, where)
        if self.head or block is None:
            raise ModelError(f"{where}: layer {layer.name!r} (MaxPooling1D) is not after a "
                             "conv block; NeuronMotif decodes pooling between conv layers")
        if self.pending_input is not None:
            raise ModelError(f"{where}: layer {layer.name!r} pools after a BatchNormalization "
                             "that follows a pooling layer; nmjax cannot fold that BatchNorm")
        block.pool = block.pool * pool if block.stage == "pool" else pool
        block.stage = "pool"

    def flatten(self, layer: KerasLayer) -> None:
        self.start_head()
        self.head.append(HeadOp("flatten", name=layer.name))

    def global_pool(self, layer: KerasLayer) -> None:
        if layer.config.get("keepdims"):
            raise ModelError(f"{self.where}: layer {layer.name!r} keeps dims; not supported")
        self.start_head()
        kind = ("global_max_pool" if layer.class_name == "GlobalMaxPooling1D"
                else "global_average_pool")
        self.head.append(HeadOp(kind, name=layer.name))

    def dense(self, layer: KerasLayer) -> None:
        self.start_head()
        w = self.get_weights(layer)
        units = int(layer.config["units"])
        kernel = w["kernel"]
        if kernel.ndim != 2 or kernel.shape[1] != units:
            raise ModelError(f"{self.where}: layer {layer.name!r} (Dense) kernel has shape "
                             f"{kernel.shape}, the architecture needs (*, {units})")
        j = len(self.head) + 1
        self.head.append(HeadOp("dense", units=units, name=layer.name,
                                activation=activation_name(layer.config.get("activation"), layer,
                                                           self.where)))
        self.head_params[f"head{j}"] = {"kernel": kernel, "bias": w.get("bias", np.zeros(units))}

    def params(self) -> tuple[list[ConvSpec], dict]:
        """The conv specs and every parameter (float32), once the chain is folded."""
        if not self.blocks:
            raise ModelError(f"{self.where}: the model has no Conv1D layer; NeuronMotif decodes "
                             "convolutional neurons")
        if self.pending_input is not None:
            self.add_affine(self.pending_input, f"{self.blocks[-1].name}+bn")
        convs, params, cin = [], {}, 4
        for l, b in enumerate(self.blocks, start=1):
            convs.append(ConvSpec(kernel_width=b.kernel.shape[0], channels=b.kernel.shape[2],
                                  in_channels=cin, activation=b.activation, pool=b.pool,
                                  post_affine=b.post is not None, name=b.name))
            params[f"conv{l}"] = {"kernel": b.kernel, "bias": b.bias}
            if b.post is not None:
                params[f"conv{l}_post_scale"], params[f"conv{l}_post_shift"] = b.post
            cin = b.kernel.shape[2]
        params.update(self.head_params)
        return convs, _as_float32(params)


def build_network(chain: list[KerasLayer], get_weights: Callable[[KerasLayer], dict[str, np.ndarray]],
                  where: str, source: str) -> Network:
    """Fold a layer chain and its weights into an nmjax Network (see the module docstring)."""
    check_supported(chain, where)
    length, _ = input_shape(chain, where)
    folder = _Folder(get_weights, where)
    for layer in chain:
        folder.fold(layer)
    convs, params = folder.params()
    config = NetworkConfig(convs=tuple(convs), head=tuple(folder.head),
                           input_length=int(length) if length else None, source=source)
    check_params(config, params, where)
    return Network(config, params)


def _as_float32(tree: dict) -> dict:
    return {k: _as_float32(v) if isinstance(v, dict) else np.asarray(v, np.float32)
            for k, v in tree.items()}
