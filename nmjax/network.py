"""The JAX twin of a genomics CNN: a chain of Conv1D blocks and a small head.

A network is an architecture (`NetworkConfig`, plain JSON-able data) plus a params
pytree of numpy/JAX arrays. BatchNorm directly after a conv is folded into that conv's
kernel and bias by the converters, so the value a neuron computes (conv output after
BatchNorm, before the activation) is one affine map of the block input.

Block l:  z = conv_l(h) + b_l  ->  a = act_l(z)  ->  [a * post_scale + post_shift]  ->  maxpool(p_l)

`post_scale/post_shift` hold a BatchNorm that follows the activation (Keras models that
put `activation='relu'` inside Conv1D and BatchNorm after it).
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from .activations import activation_fn
from .errors import ModelError, NmjaxError
from .fileio import atomic_path
from .programs import compiled

CHECKPOINT_FORMAT = "nmjax-network"
CHECKPOINT_VERSION = 1

@dataclasses.dataclass(frozen=True)
class ConvSpec:
    """One conv block: Conv1D(kernel_width, channels) -> activation -> [affine] -> MaxPool1D(pool)."""

    kernel_width: int
    channels: int
    in_channels: int
    activation: str = "relu"
    pool: int = 1
    post_affine: bool = False
    name: str = ""


@dataclasses.dataclass(frozen=True)
class HeadOp:
    """One head operation after the conv stack.

    kind: 'flatten' | 'dense' (units, activation) | 'affine' (per-feature scale/shift,
    a folded BatchNorm) | 'activation' | 'global_max_pool' | 'global_average_pool'.
    """

    kind: str
    units: int = 0  # dense: output width; affine: feature count
    activation: str = "linear"
    name: str = ""


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    """Architecture of a network: conv blocks, head, and the input length it was built for."""

    convs: tuple[ConvSpec, ...]
    head: tuple[HeadOp, ...] = ()
    input_length: int | None = None
    source: str = ""

    def to_json(self) -> dict:
        return {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
                "input_length": self.input_length, "source": self.source,
                "convs": [dataclasses.asdict(c) for c in self.convs],
                "head": [dataclasses.asdict(h) for h in self.head]}

    @classmethod
    def from_json(cls, d: dict) -> "NetworkConfig":
        return cls(convs=tuple(ConvSpec(**c) for c in d["convs"]),
                   head=tuple(HeadOp(**h) for h in d["head"]),
                   input_length=d.get("input_length"), source=d.get("source", ""))


def receptive_field(kernel_widths: list[int] | tuple[int, ...], pools: list[int] | tuple[int, ...],
                    layer: int) -> int:
    """Input length that gives exactly one output position at conv layer `layer` (1-based).

    Walks back from one output position: n = 1; for i = l..2: n = (n + k_i - 1) * p_{i-1};
    N_l = n + k_1 - 1.
    """
    n = 1
    for i in range(layer, 1, -1):
        n = (n + kernel_widths[i - 1] - 1) * pools[i - 2]
    return n + kernel_widths[0] - 1


def shift_multiplicity(pools: list[int] | tuple[int, ...], layer: int) -> int:
    """S_l = p_1 * ... * p_{l-1}: how many shifted copies of a motif one neuron of layer l mixes."""
    return int(np.prod(pools[: layer - 1], dtype=np.int64))


def neuron_weights(params, layer: int, neuron: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One neuron's kernel (k, C_{l-1}) and bias of conv `layer`; `neuron` may be traced."""
    kernel = jax.lax.dynamic_index_in_dim(params[f"conv{layer}"]["kernel"], neuron, axis=2,
                                          keepdims=False)
    bias = jax.lax.dynamic_index_in_dim(params[f"conv{layer}"]["bias"], neuron, keepdims=False)
    return kernel, bias


def maxpool(x: jax.Array, pool: int) -> jax.Array:
    """Non-overlapping max-pool of (..., length, channels) by `pool` (a short tail dropped)."""
    if pool == 1:
        return x
    length = (x.shape[-2] // pool) * pool
    x = x[..., :length, :]
    return x.reshape(*x.shape[:-2], length // pool, pool, x.shape[-1]).max(axis=-2)


class ConvStack(nn.Module):
    """Flax module of the whole network; params are named conv1.., head1.. ."""

    config: NetworkConfig

    def setup(self):
        convs, post = [], []
        for l, spec in enumerate(self.config.convs, start=1):
            convs.append(nn.Conv(spec.channels, (spec.kernel_width,), padding="VALID",
                                 name=f"conv{l}"))
            post.append((self.param(f"conv{l}_post_scale", nn.initializers.ones, (spec.channels,)),
                         self.param(f"conv{l}_post_shift", nn.initializers.zeros, (spec.channels,)))
                        if spec.post_affine else None)
        self.convs, self.post = convs, post
        head = []
        for j, op in enumerate(self.config.head, start=1):
            if op.kind == "dense":
                head.append(nn.Dense(op.units, name=f"head{j}"))
            elif op.kind == "affine":
                head.append((self.param(f"head{j}_scale", nn.initializers.ones, (op.units,)),
                             self.param(f"head{j}_shift", nn.initializers.zeros, (op.units,))))
            else:
                head.append(None)
        self.head = head

    def block_input(self, x: jax.Array, layer: int) -> jax.Array:
        """The input of conv layer `layer`: blocks 1..layer-1 applied in full."""
        h = x
        for i in range(layer - 1):
            spec = self.config.convs[i]
            h = activation_fn(spec.activation)(self.convs[i](h))
            if self.post[i] is not None:
                h = h * self.post[i][0] + self.post[i][1]
            h = maxpool(h, spec.pool)
        return h

    def conv_output(self, x: jax.Array, layer: int) -> jax.Array:
        """Conv layer `layer` output after BatchNorm, before the activation."""
        return self.convs[layer - 1](self.block_input(x, layer))

    def __call__(self, x: jax.Array) -> jax.Array:
        h = self.block_input(x, len(self.config.convs) + 1)
        for op, mod in zip(self.config.head, self.head):
            if op.kind == "flatten":
                h = h.reshape(h.shape[0], -1)
            elif op.kind == "dense":
                h = activation_fn(op.activation)(mod(h))
            elif op.kind == "affine":
                h = h * mod[0] + mod[1]
            elif op.kind == "activation":
                h = activation_fn(op.activation)(h)
            elif op.kind == "global_max_pool":
                h = h.max(axis=-2)
            elif op.kind == "global_average_pool":
                h = h.mean(axis=-2)
            else:
                raise ModelError(f"unknown head operation {op.kind!r}")
        return h


class Network:
    """A loaded network: architecture, params, and the functions the decoder needs.

    Layers are 1-based everywhere, as in the paper (layer 1 reads the one-hot DNA).
    """

    def __init__(self, config: NetworkConfig, params: dict[str, Any]):
        self.config = config
        self.module = ConvStack(config)
        self.params = jax.tree_util.tree_map(jnp.asarray, params)

    # -- architecture -------------------------------------------------------------------
    @property
    def num_conv_layers(self) -> int:
        return len(self.config.convs)

    @property
    def kernel_widths(self) -> tuple[int, ...]:
        return tuple(c.kernel_width for c in self.config.convs)

    @property
    def pools(self) -> tuple[int, ...]:
        return tuple(c.pool for c in self.config.convs)

    def check_layer(self, layer: int) -> None:
        """A clear error for a conv layer this network does not have."""
        if not 1 <= layer <= self.num_conv_layers:
            raise ModelError(f"conv layer {layer} does not exist: this network has conv layers "
                             f"1..{self.num_conv_layers}")

    def channels(self, layer: int) -> int:
        self.check_layer(layer)
        return self.config.convs[layer - 1].channels

    def neurons_of(self, layer: int, neurons: Sequence[int] | None = None) -> list[int]:
        """The sorted `neurons` of `layer` (None = all); a clear error for ones it lacks."""
        channels = self.channels(layer)
        if neurons is None:
            return list(range(channels))
        neurons = sorted(set(neurons))
        bad = [n for n in neurons if not 0 <= n < channels]
        if bad or not neurons:
            raise NmjaxError(f"neuron(s) {bad or 'none'} do not exist: layer {layer} has "
                             f"neurons 0..{channels - 1}")
        return neurons

    def receptive_field(self, layer: int) -> int:
        self.check_layer(layer)
        return receptive_field(self.kernel_widths, self.pools, layer)

    def shift_multiplicity(self, layer: int) -> int:
        self.check_layer(layer)
        return shift_multiplicity(self.pools, layer)

    def layer_table(self) -> list[dict]:
        """One row per conv layer: what `nmjax info` prints."""
        return [{"layer": l, "name": c.name, "kernel_width": c.kernel_width,
                 "channels": c.channels, "activation": c.activation, "pool": c.pool,
                 "receptive_field": self.receptive_field(l),
                 "shift_multiplicity": self.shift_multiplicity(l)}
                for l, c in enumerate(self.config.convs, start=1)]

    # -- numbers ------------------------------------------------------------------------
    def conv_output(self, x, layer: int) -> jax.Array:
        """(batch, length, 4) one-hot -> (batch, length_out, channels) of conv `layer`, pre-activation."""
        self.check_layer(layer)
        return _jit_method(self.config, "conv_output", layer)(self.params, x)

    def block_input(self, x, layer: int) -> jax.Array:
        """(batch, length, 4) -> input of conv `layer` (what feeds it after pooling)."""
        return _jit_method(self.config, "block_input", layer)(self.params, x)

    def predict(self, x) -> jax.Array:
        """The whole model's output for one-hot `x` of shape (batch, length, 4)."""
        return _jit_method(self.config, "__call__", None)(self.params, x)

    def neuron_fn(self, layer: int) -> Callable[[Any, jax.Array, jax.Array], jax.Array]:
        """Pure `f(params, x, neuron) -> scalar` for one window `x` of shape (N_layer, 4).

        `neuron` is a traced integer, so one compiled program serves every neuron of the
        layer; `f` works under jit, vmap (over x and/or neuron) and grad.
        """
        self.check_layer(layer)
        module = self.module

        def f(params, x, neuron):
            h = module.apply({"params": params}, x[None].astype(jnp.float32), layer,
                             method=ConvStack.block_input)[0]
            w, b = neuron_weights(params, layer, neuron)
            return jnp.sum(h[: w.shape[0]] * w) + b

        return f

    def neuron_values(self, x, layer: int, neurons) -> jax.Array:
        """f for a batch of windows (batch, N_layer, 4) and neurons (batch,) or a scalar neuron."""
        return _neuron_values(self.config, layer)(self.params, jnp.asarray(x),
                                           jnp.broadcast_to(jnp.asarray(neurons, jnp.int32),
                                                            (len(x),)))

    # -- persistence --------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write a self-describing nmjax checkpoint (.npz: config JSON + params), atomically."""
        flat = {"/".join(k): np.asarray(v) for k, v in _flatten(self.params).items()}
        flat["__config__"] = np.array(json.dumps(self.config.to_json()))
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **flat)

    def __repr__(self) -> str:
        return (f"Network({self.num_conv_layers} conv layers, channels="
                f"{[c.channels for c in self.config.convs]}, source={self.config.source!r})")


def _flatten(tree: dict, prefix=()) -> dict:
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_flatten(v, prefix + (k,)))
        else:
            out[prefix + (k,)] = v
    return out


@compiled(maxsize=None)
def _jit_method(config: NetworkConfig, method: str, layer):
    """One compiled program per (architecture, method, layer), shared by all networks."""
    module, args, fn = ConvStack(config), () if layer is None else (layer,), getattr(ConvStack, method)
    return jax.jit(lambda params, x: module.apply({"params": params},
                                                  jnp.asarray(x, jnp.float32), *args,
                                                  method=fn))


@compiled(maxsize=None)
def _neuron_values(config: NetworkConfig, layer: int):
    return jax.jit(jax.vmap(Network(config, {}).neuron_fn(layer), in_axes=(None, 0, 0)))


def load_checkpoint(path: str | os.PathLike) -> Network:
    """Read an nmjax checkpoint written by `Network.save`."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if "__config__" not in data.files:
                raise ModelError(f"{path}: not an nmjax checkpoint (no __config__ entry)")
            cfg = json.loads(str(data["__config__"]))
            arrays = {k: data[k] for k in data.files if k != "__config__"}
    except (OSError, ValueError) as e:
        raise ModelError(f"{path}: cannot read nmjax checkpoint: {e}") from e
    if cfg.get("format") != CHECKPOINT_FORMAT:
        raise ModelError(f"{path}: unknown checkpoint format {cfg.get('format')!r}")
    params: dict = {}
    for key, arr in arrays.items():
        node = params
        *parents, leaf = key.split("/")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = arr
    config = NetworkConfig.from_json(cfg)
    check_params(config, params, str(path))
    return Network(config, params)


def expected_param_shapes(config: NetworkConfig) -> dict:
    """The params pytree shapes an architecture needs (input length taken from the config)."""
    length = config.input_length or receptive_field(
        [c.kernel_width for c in config.convs], [c.pool for c in config.convs], len(config.convs))
    x = jax.ShapeDtypeStruct((1, length, config.convs[0].in_channels), jnp.float32)
    shapes = jax.eval_shape(lambda: ConvStack(config).init(jax.random.key(0), jnp.zeros(x.shape)))
    return jax.tree_util.tree_map(lambda s: tuple(s.shape), shapes["params"])


def check_params(config: NetworkConfig, params: dict, where: str) -> None:
    """Raise a ModelError naming the first missing or mis-shaped weight."""
    want = _flatten(expected_param_shapes(config))
    have = _flatten(params)
    for key, shape in want.items():
        name = "/".join(key)
        if key not in have:
            raise ModelError(f"{where}: weight {name} is missing (expected shape {shape})")
        if tuple(np.shape(have[key])) != shape:
            raise ModelError(f"{where}: weight {name} has shape {tuple(np.shape(have[key]))}, "
                             f"the architecture needs {shape}")
    extra = sorted("/".join(k) for k in have if k not in want)
    if extra:
        raise ModelError(f"{where}: weights {extra} do not belong to the architecture")
    for key in want:
        check_finite(have[key], "/".join(key), where)


def check_finite(value, name: str, where: str) -> None:
    """Raise a ModelError naming a weight that holds NaN or Inf: every f it feeds is NaN, so
    no neuron above it could be decoded (a diverged training run or a damaged file)."""
    value = np.asarray(value)
    if value.dtype.kind not in "fc":
        return
    bad = ~np.isfinite(value)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        counts = " and ".join(f"{n} {kind}" for n, kind in ((np.isnan(value).sum(), "NaN"),
                                                            (np.isinf(value).sum(), "infinite"))
                              if n)
        raise ModelError(f"{where}: weight {name} holds {counts} value(s) (first at index "
                         f"{first}); nmjax cannot decode a model with non-finite weights: "
                         "re-export the model from a checkpoint whose training had not diverged")
