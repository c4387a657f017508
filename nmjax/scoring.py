"""Population scoring for the genetic algorithm: a neuron's value f and its input gradient.

`make_score_fn(net, layer)` returns a pure function
    score(params, x, neuron) -> (f, g)
for a population `x` of one-hot windows, shape (P, N_layer, 4): f has shape (P,), g = df/dx has
shape (P, N_layer, 4). `neuron` is a traced int, so one compiled program serves a whole layer
(and `jax.vmap` over neurons batches many neurons into one program). `make_value_fn` is the
same without the gradient.

Why not `jax.value_and_grad(net.neuron_fn(layer))`: that computes the same numbers, but XLA's
input gradient of the 4-channel first conv (a conv-transpose to 4 channels) runs at a fraction
of the machine's matmul rate and dominated the hot loop. Here the first conv is one matmul on
unfolded windows, (P * L1, k1 * 4) x (k1 * 4, C1), whose autodiff transpose is the matmul
dz1 x W1^T followed by a fold (shifted adds) back to (P, N, 4); deeper convs stay XLA convs
(forward and input gradient both near matmul rate there). Only blocks 1..l-1 run in full;
neuron (l, c) itself is one dot product of the block input with its kernel slice.

precision='bf16' casts conv inputs and kernels to bfloat16 with float32 accumulation (the
bias, activations' arithmetic and the last dot stay float32). f then differs from the float32
value by ~5e-3 of max|f| on Basset; re-score kept samples with precision='fp32' (or
`make_value_fn`). deep_conv picks how convs after the first run (`DEEP_CONVS`): XLA's conv
('conv', default), one 2-D dot on unfolded windows ('dot', like conv 1) or one 2-D dot per
kernel tap ('taps'); only 2-D dots take XLA CPU's bf16 (AMX) path. Measured on this 2-core
machine (bench/results/deep_conv_variants.md; one GA generation of a full-size Basset layer-3
neuron, P = 1,000): fp32 conv 0.85 s, bf16 conv 0.91, bf16 taps 1.08, fp32 taps 1.32, bf16
dot 1.37, fp32 dot 1.45. The bf16 dots themselves ran 1.3-2.4x faster than fp32 at these
shapes, but the casts, unfold/fold and per-tap slices around them cost more, so fp32 + XLA conv
stays the default; on a GPU bf16 should pay.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from .errors import NmjaxError
from .network import Network, NetworkConfig, _maxpool, activation_fn

PRECISIONS = ("fp32", "bf16")
AUTO_CHUNK = 128  # windows per chunk where population_chunk='auto' chunks (see make_score_fn)
_COMPUTE_DTYPE = {"fp32": jnp.float32, "bf16": jnp.bfloat16}


def unfold_windows(h: jax.Array, width: int) -> jax.Array:
    """(..., L, C) -> (..., L - width + 1, width * C): every window of `width` positions, flat."""
    out_len = h.shape[-2] - width + 1
    return jnp.concatenate([h[..., i:i + out_len, :] for i in range(width)], axis=-1)


def _first_conv(x: jax.Array, kernel: jax.Array, bias: jax.Array, dtype) -> jax.Array:
    """Conv layer 1 as one matmul on unfolded windows (its transpose is a matmul plus a fold)."""
    width, cin, cout = kernel.shape
    windows = unfold_windows(x.astype(dtype), width)
    z = jnp.dot(windows.reshape(-1, width * cin), kernel.astype(dtype).reshape(width * cin, cout),
                preferred_element_type=jnp.float32)  # a 2-D dot: XLA CPU runs it faster
    return z.reshape(*windows.shape[:-1], cout) + bias


def _deep_conv(h: jax.Array, kernel: jax.Array, bias: jax.Array, dtype) -> jax.Array:
    """Conv layer > 1: XLA's valid conv (forward and input gradient both matmul-like here)."""
    z = jax.lax.conv_general_dilated(h.astype(dtype), kernel.astype(dtype), (1,), "VALID",
                                     dimension_numbers=("NWC", "WIO", "NWC"),
                                     preferred_element_type=jnp.float32)
    return z + bias


def _tap_conv(h: jax.Array, kernel: jax.Array, bias: jax.Array, dtype) -> jax.Array:
    """Conv layer > 1 as a sum over kernel taps of 2-D dots (P * L, C_in) x (C_in, C_out):
    no unfolded copy of the input, and every dot can take the bf16 (AMX) path."""
    width, cin, cout = kernel.shape
    out_len = h.shape[-2] - width + 1
    h, kernel = h.astype(dtype), kernel.astype(dtype)
    z = sum(jnp.dot(h[:, i:i + out_len].reshape(-1, cin), kernel[i],
                    preferred_element_type=jnp.float32) for i in range(width))
    return z.reshape(h.shape[0], out_len, cout) + bias


# How conv layers > 1 are computed: XLA's conv, one dot on unfolded windows, or per-tap dots.
DEEP_CONVS = {"conv": _deep_conv, "dot": _first_conv, "taps": _tap_conv}


def population_block_input(config: NetworkConfig, params, x: jax.Array, layer: int,
                           precision: str = "fp32", deep_conv: str = "conv") -> jax.Array:
    """(P, N, 4) -> (P, L, C_{layer-1}): the input of conv `layer` (blocks 1..layer-1)."""
    dtype = _COMPUTE_DTYPE[precision]
    h = x
    for i, spec in enumerate(config.convs[: layer - 1], start=1):
        conv = _first_conv if i == 1 else DEEP_CONVS[deep_conv]
        h = conv(h, params[f"conv{i}"]["kernel"], params[f"conv{i}"]["bias"], dtype)
        h = activation_fn(spec.activation)(h)
        if spec.post_affine:
            h = h * params[f"conv{i}_post_scale"] + params[f"conv{i}_post_shift"]
        h = _maxpool(h, spec.pool)
    return h


def _check(net: Network, layer: int, precision: str, deep_conv: str) -> None:
    if precision not in PRECISIONS:
        raise NmjaxError(f"unknown scoring precision {precision!r}; choose one of "
                         f"{', '.join(PRECISIONS)}")
    if deep_conv not in DEEP_CONVS:
        raise NmjaxError(f"unknown deep conv implementation {deep_conv!r}; choose one of "
                         f"{', '.join(DEEP_CONVS)}")
    if layer < 1 or layer > net.num_conv_layers:
        raise NmjaxError(f"conv layer {layer} does not exist: this network has conv layers "
                         f"1..{net.num_conv_layers}")


def _chunk_size(layer: int, population_chunk: int | str | None) -> int | None:
    """'auto': `AUTO_CHUNK` at layer 2, else None (see `make_score_fn`)."""
    if population_chunk == "auto":
        return AUTO_CHUNK if layer == 2 else None
    if population_chunk is not None and (not isinstance(population_chunk, int)
                                         or population_chunk < 1):
        raise NmjaxError(f"population_chunk must be a positive integer, 'auto' or None, not "
                         f"{population_chunk!r}")
    return population_chunk


def _in_chunks(fn: Callable, chunk: int | None) -> Callable:
    """fn(params, x, neuron) applied to sequential chunks of the population (`lax.map`)."""
    if chunk is None:
        return fn

    def chunked(params, x, neuron):
        size = x.shape[0]
        if chunk >= size:
            return fn(params, x, neuron)
        count = -(-size // chunk)
        padded = jnp.pad(x, ((0, count * chunk - size), (0, 0), (0, 0)))
        out = jax.lax.map(lambda piece: fn(params, piece, neuron),
                          padded.reshape(count, chunk, *x.shape[1:]))
        return jax.tree_util.tree_map(lambda a: a.reshape(-1, *a.shape[2:])[:size], out)

    return chunked


def _value(config: NetworkConfig, layer: int, precision: str, deep_conv: str) -> Callable:
    def value(params, x, neuron):
        h = population_block_input(config, params, x.astype(jnp.float32), layer, precision,
                                   deep_conv)
        kernel = params[f"conv{layer}"]["kernel"]
        w = jax.lax.dynamic_index_in_dim(kernel, neuron, axis=2, keepdims=False)
        b = jax.lax.dynamic_index_in_dim(params[f"conv{layer}"]["bias"], neuron, keepdims=False)
        return jnp.einsum("plc,lc->p", h[:, : w.shape[0]].astype(jnp.float32), w) + b

    return value


def make_value_fn(net: Network, layer: int, *, precision: str = "fp32", deep_conv: str = "conv",
                  population_chunk: int | str | None = "auto"
                  ) -> Callable[[dict, jax.Array, jax.Array], jax.Array]:
    """Pure `value(params, x, neuron) -> f (P,)` for windows x (P, N_layer, 4)."""
    _check(net, layer, precision, deep_conv)
    return _in_chunks(_value(net.config, layer, precision, deep_conv),
                      _chunk_size(layer, population_chunk))


def make_score_fn(net: Network, layer: int, *, precision: str = "fp32", deep_conv: str = "conv",
                  population_chunk: int | str | None = "auto"
                  ) -> Callable[[dict, jax.Array, jax.Array], tuple[jax.Array, jax.Array]]:
    """Value and input gradient of neuron `neuron` of `layer` for a population of windows.

    population_chunk: score the population in sequential chunks of this many windows
    (`lax.map`), bounding the activations held at once; None scores it in one piece. 'auto'
    chunks by `AUTO_CHUNK` where that measured faster: layer 2, whose only conv is the first
    one (the chunk's activations stay in cache: 2.3x on Basset layer 2), and not deeper (XLA
    CPU ran the deep convs inside the loop ~3x slower on Basset layer 3).
    Under jit, a caller that uses only f pays only the forward pass (the gradient is dead code,
    also inside the chunk loop).
    """
    _check(net, layer, precision, deep_conv)
    value = _value(net.config, layer, precision, deep_conv)

    def score(params, x, neuron):
        f, pullback = jax.vjp(lambda x: value(params, x, neuron), x)
        (g,) = pullback(jnp.ones_like(f))
        return f, g

    return _in_chunks(score, _chunk_size(layer, population_chunk))
