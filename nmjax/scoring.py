"""Population scoring for the genetic algorithm: a neuron's value f and its input gradient.

`make_score_fn(net, layer)` returns a pure function
    score(params, x, neuron) -> (f, g)
for a population `x` of one-hot windows, shape (P, N_layer, 4): f has shape (P,), g = df/dx has
shape (P, N_layer, 4). `neuron` is a traced int, so one compiled program serves a whole layer
(and `jax.vmap` over neurons batches many neurons into one program). `make_value_fn` is the
same without the gradient.

The pass is written out by hand (forward, then the input gradient) instead of
`jax.value_and_grad(net.neuron_fn(layer))`, which computes the same numbers (tests compare them)
but ran 2x slower on this CPU (bench/results/): every conv is ONE 2-D dot on unfolded windows,
(P * L, k * C_in) x (k * C_in, C_out), and its input gradient one 2-D dot with the transposed
kernel, prepared once outside the population loop, followed by a fold (a fused sum of shifted
copies). XLA CPU runs such dots through its matmul library (bf16 on the AMX units), while its
conv-transpose to the 4 one-hot channels and its scatter-add fold ran far below matmul rate.
Around the dots the pass is bound by memory traffic, so each max-pool is one reduce that also
records the phase of the maximum (the gradient reads that index, not the conv output again), and
where the activation commutes with max-pooling the pool comes first (`_pool_first`). Max-pool
gradients go to the first maximum of a window, TensorFlow's rule (JAX splits exact ties evenly;
the two differ only at ties). Only blocks 1..l-1 run in full; neuron (l, c) itself is one dot
product of the block input with its kernel slice. The population is scored in sequential chunks
(`lax.map`) of `CHUNK_ELEMENTS`.

precision='bf16' feeds the dots bfloat16 inputs and kernels with float32 accumulation
(biases, activations, pools and the last dot stay float32): f then differs from the float32
value by ~5e-3 of max|f| on Basset and the gradient by a cosine > 0.99; the decoder uses it for
the GA's mutation gradients only and keeps every f it records in float32 (`DecodeConfig`).
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from .activations import activation_fn, commutes_with_max_pool
from .config import PRECISIONS
from .errors import NmjaxError
from .network import Network, NetworkConfig, neuron_weights, receptive_field

# precision='auto' picks bf16 for a layer when a conv below it is at least this wide: with
# Basset's 300-channel first conv a layer-2 generation ran 1.6x faster in bf16 than in fp32,
# while on the bundled example's 24-32-channel convs bf16 gained 0-2 % (layer 5), before the
# float32 re-scoring of the kept samples that it costs.
BF16_MIN_CHANNELS = 128
# Elements of the largest per-window intermediate (an unfolded conv input or a conv output)
# held per chunk of the population. 2e6 gives chunks of 202, 21 and 76 windows on Basset layers
# 2 and 3 and BD-10 layer 10, each the fastest of the sizes tried there in bf16 (50-400, 5-80
# and 8-150 windows; 10-40 % faster than the extremes; at layer 2 again after the pool rewrite).
CHUNK_ELEMENTS = 2_000_000
_COMPUTE_DTYPE = {"fp32": jnp.float32, "bf16": jnp.bfloat16}


def unfold_windows(h: jax.Array, width: int) -> jax.Array:
    """(..., L, C) -> (..., L - width + 1, width * C): every window of `width` positions, flat.

    The 4 one-hot channels are unfolded by one gather kernel instead of `width` tiny slices and a
    concatenation (a Basset layer-2 generation 8 % faster); wider inputs by the concatenation,
    which for bf16 goes through uint16 because XLA CPU concatenates bf16 through float32 (two
    extra passes). A row gather of the wide inputs ran 5-10 % slower at Basset layer 3.
    """
    out_len = h.shape[-2] - width + 1
    if h.shape[-1] == 4:
        idx = 4 * np.arange(out_len)[:, None] + np.arange(4 * width)[None, :]
        return h.reshape(*h.shape[:-2], -1)[..., idx]
    if h.dtype == jnp.bfloat16:
        bits = jax.lax.bitcast_convert_type(h, jnp.uint16)
        return jax.lax.bitcast_convert_type(unfold_windows(bits, width), jnp.bfloat16)
    return jnp.concatenate([h[..., i:i + out_len, :] for i in range(width)], axis=-1)


def fold_windows(u: jax.Array, width: int) -> jax.Array:
    """Transpose of `unfold_windows`: (..., L', width * C) -> (..., L' + width - 1, C), each
    window's entries added back at their positions (one fused sum of shifted copies)."""
    u = u.reshape(*u.shape[:-1], width, u.shape[-1] // width)
    lead = [(0, 0)] * (u.ndim - 3)
    return sum(jnp.pad(u[..., i, :], lead + [(i, width - 1 - i), (0, 0)]) for i in range(width))


def pool_max(a: jax.Array, pool: int) -> tuple[jax.Array, jax.Array | None]:
    """`network.maxpool` of a (C, L, ch) and, per window, the phase of its first maximum
    (int8), from one variadic reduce: the gradient then reads the small index instead of a."""
    if pool == 1:
        return a, None
    kept = a.shape[1] // pool * pool
    win = a[:, :kept].reshape(a.shape[0], kept // pool, pool, a.shape[2])
    phase = jax.lax.broadcasted_iota(jnp.int8, win.shape, 2)

    def first_max(x, y):
        take_y = (y[0] > x[0]) | ((y[0] == x[0]) & (y[1] < x[1]))
        return jnp.where(take_y, y[0], x[0]), jnp.where(take_y, y[1], x[1])

    return jax.lax.reduce((win, phase), (jnp.array(-jnp.inf, a.dtype), jnp.int8(0)), first_max,
                          (2,))


def pool_grad(d: jax.Array, argmax: jax.Array | None, pool: int, length: int) -> jax.Array:
    """Gradient of `pool_max` (input length `length`): d goes to the first maximal entry of each
    window, as TensorFlow's max-pool gradient does (JAX splits ties evenly)."""
    if pool == 1:
        return d
    phase = jax.lax.broadcasted_iota(jnp.int8, d.shape[:2] + (pool,) + d.shape[2:], 2)
    g = jnp.where(phase == argmax[:, :, None, :], d[:, :, None, :], 0.0)
    g = g.reshape(d.shape[0], -1, d.shape[2])
    return jnp.pad(g, ((0, 0), (0, length - g.shape[1]), (0, 0)))


def _kernels(config: NetworkConfig, params, layer: int, dtype) -> list[dict]:
    """Blocks 1..layer-1 as 2-D kernels (k * C_in, C_out) and their transposes, cast once."""
    blocks = []
    for i, spec in enumerate(config.convs[: layer - 1], start=1):
        kernel = params[f"conv{i}"]["kernel"]
        flat = kernel.reshape(-1, kernel.shape[-1])
        post = ((params[f"conv{i}_post_scale"], params[f"conv{i}_post_shift"])
                if spec.post_affine else None)
        blocks.append({"w": flat.astype(dtype), "wt": flat.T.astype(dtype),
                       "b": params[f"conv{i}"]["bias"], "post": post})
    return blocks


def _elementwise(spec, post) -> Callable[[jax.Array], jax.Array]:
    """Activation, then the BatchNorm that follows it (if any), of one conv block."""
    act = activation_fn(spec.activation)
    if post is None:
        return act
    return lambda z: act(z) * post[0] + post[1]


def _pool_first(spec) -> bool:
    """Whether max-pooling commutes with the block's elementwise part: a non-decreasing
    activation and no BatchNorm after it (whose scale may be negative). Then
    pool(act(z + b)) = act(pool(z) + b), and the activation runs on the pooled positions only."""
    return not spec.post_affine and commutes_with_max_pool(spec.activation)


def _pass(config: NetworkConfig, layer: int, dtype, with_grad: bool):
    """score(blocks, w, b, x) -> f or (f, g) for one chunk of windows x (C, N, 4)."""
    specs = config.convs[: layer - 1]

    def run(blocks, w, b, x):
        h, saved = x, []
        for spec, blk in zip(specs, blocks):
            u = unfold_windows(h.astype(dtype), spec.kernel_width)
            z = jnp.dot(u.reshape(-1, u.shape[-1]), blk["w"], preferred_element_type=jnp.float32)
            z = z.reshape(*u.shape[:-1], -1)
            fn = _elementwise(spec, blk["post"])
            first = _pool_first(spec)
            if first:  # max-pool the raw dot; bias and activation on 1/pool of it
                pooled, argmax = pool_max(z, spec.pool)
                pre = pooled + blk["b"]
                h = fn(pre)
            else:
                pre = z + blk["b"]
                h, argmax = pool_max(fn(pre), spec.pool)
            saved.append((fn, pre, argmax, z.shape[1], first))
        # the neuron's own dot as a mat-vec on flat windows (an einsum over (l, c) transposed them)
        k = w.shape[0]
        f = h[:, :k].reshape(h.shape[0], -1) @ w.reshape(-1) + b
        if not with_grad:
            return f
        d = jnp.pad(jnp.broadcast_to(w, (h.shape[0],) + w.shape),
                    ((0, 0), (0, h.shape[1] - k), (0, 0)))
        for spec, blk, (fn, pre, argmax, length, first) in zip(specs[::-1], blocks[::-1],
                                                               saved[::-1]):
            pullback = jax.vjp(fn, pre)[1]
            if first:
                d = pool_grad(pullback(d)[0], argmax, spec.pool, length)
            else:
                d = pullback(pool_grad(d, argmax, spec.pool, length))[0]
            du = jnp.dot(d.reshape(-1, d.shape[-1]).astype(dtype), blk["wt"],
                         preferred_element_type=jnp.float32)
            d = fold_windows(du.reshape(*d.shape[:-1], -1), spec.kernel_width)
        return f, d

    return run


def block_shapes(config: NetworkConfig, layer: int) -> list[tuple[int, int, int]]:
    """(output positions, unfolded width k * C_in, C_out) of conv blocks 1..layer-1 on one
    window of `layer`'s receptive field: the sizes of the pass's per-window intermediates."""
    length = receptive_field([s.kernel_width for s in config.convs],
                             [s.pool for s in config.convs], layer)
    shapes, channels = [], 4
    for spec in config.convs[: layer - 1]:
        out_len = length - spec.kernel_width + 1
        shapes.append((out_len, spec.kernel_width * channels, spec.channels))
        length, channels = out_len // spec.pool, spec.channels
    return shapes


def chunk_size(config: NetworkConfig, layer: int) -> int:
    """Windows per chunk: `CHUNK_ELEMENTS` over the largest per-window intermediate."""
    largest = max([1] + [out_len * max(width, cout)
                         for out_len, width, cout in block_shapes(config, layer)])
    return max(1, CHUNK_ELEMENTS // largest)


def _in_chunks(run: Callable, config: NetworkConfig, layer: int, precision: str,
               population_chunk: int | str | None) -> Callable:
    """fn(params, x, neuron) over sequential chunks of the population (`lax.map`)."""
    dtype = _COMPUTE_DTYPE[precision]
    chunk = chunk_size(config, layer) if population_chunk == "auto" else population_chunk

    def scored(params, x, neuron):
        blocks = _kernels(config, params, layer, dtype)
        w, b = neuron_weights(params, layer, neuron)
        x = x.astype(dtype)  # one-hot: exact in bf16, and half the bytes to unfold
        size = x.shape[0]
        if chunk is None or chunk >= size:
            return run(blocks, w, b, x)
        count = -(-size // chunk)
        even = -(-size // count)  # as few chunks, evenly filled: 2,000 = 10 x 200, not 10 x 202
        padded = jnp.pad(x, ((0, count * even - size), (0, 0), (0, 0)))
        out = jax.lax.map(lambda piece: run(blocks, w, b, piece),
                          padded.reshape(count, even, *x.shape[1:]))
        return jax.tree_util.tree_map(lambda a: a.reshape(-1, *a.shape[2:])[:size], out)

    return scored


def layer_precision(config: NetworkConfig, layer: int, precision: str) -> str:
    """'fp32' or 'bf16' for one layer's GA passes; 'auto' chooses by `BF16_MIN_CHANNELS`."""
    if precision != "auto":
        return precision
    wide = any(spec.channels >= BF16_MIN_CHANNELS for spec in config.convs[: layer - 1])
    return "bf16" if wide else "fp32"


def _check(net: Network, layer: int, precision: str,
           population_chunk: int | str | None) -> None:
    if precision not in PRECISIONS:
        raise NmjaxError(f"unknown scoring precision {precision!r}; choose one of "
                         f"{', '.join(PRECISIONS)}")
    net.check_layer(layer)
    if population_chunk not in ("auto", None) and (not isinstance(population_chunk, int)
                                                   or population_chunk < 1):
        raise NmjaxError(f"population_chunk must be a positive integer, 'auto' or None, not "
                         f"{population_chunk!r}")


def make_value_fn(net: Network, layer: int, *, precision: str = "fp32",
                  population_chunk: int | str | None = "auto"
                  ) -> Callable[[dict, jax.Array, jax.Array], jax.Array]:
    """Pure `value(params, x, neuron) -> f (P,)` for windows x (P, N_layer, 4)."""
    _check(net, layer, precision, population_chunk)
    run = _pass(net.config, layer, _COMPUTE_DTYPE[precision], with_grad=False)
    return _in_chunks(run, net.config, layer, precision, population_chunk)


def make_score_fn(net: Network, layer: int, *, precision: str = "fp32",
                  population_chunk: int | str | None = "auto"
                  ) -> Callable[[dict, jax.Array, jax.Array], tuple[jax.Array, jax.Array]]:
    """Value and input gradient of neuron `neuron` of `layer` for a population of windows.

    population_chunk: at most this many windows per sequential chunk (`lax.map`, chunks evenly
    filled); 'auto' = `chunk_size`, None = the whole population in one piece.
    """
    _check(net, layer, precision, population_chunk)
    run = _pass(net.config, layer, _COMPUTE_DTYPE[precision], with_grad=True)
    return _in_chunks(run, net.config, layer, precision, population_chunk)
