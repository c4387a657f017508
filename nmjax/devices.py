"""Spreading a GA call over the local devices and fitting it to a memory budget.

Devices: one call of a layer's GA program runs a batch of neurons (vmapped over neurons).
`shard_neurons` places the neuron axis of that call's arrays over all local JAX devices (a 1-D
`Mesh` named 'neurons', `NamedSharding`), so the jitted program runs each device's neurons on
that device; the batch is padded to a multiple of the device count (`neuron_batch`). With one
device nothing is moved. Each neuron's PRNG key depends only on (seed, layer, neuron), so the
output does not depend on the device count.

Memory: `neuron_batch` caps the batch so that the GA program's estimated temporary memory per
device (`ga_bytes_per_neuron`, calibrated against XLA's `memory_analysis`) fits
`DecodeConfig.memory_budget`.
"""
from __future__ import annotations

import functools
import re

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from . import ga
from .errors import NmjaxError
from .scoring import block_shapes, chunk_size

NEURON_AXIS = "neurons"
# Temporary bytes per neuron of one GA call ~ CHUNK_FACTOR x (one scoring chunk's
# `activation_floats` x 4 bytes) + WINDOW_FACTOR x (population x N x 4 one-hot floats x 4 bytes).
# Calibrated with `ga_temp_bytes` (XLA CPU, jax 0.10.2, batch 2 minus batch 1) on the toy
# network, the example's layers 3 and 5, Basset layers 2-3 (bf16) and BD-10 layer 8: the
# estimate was 1.3-3.9x the measured bytes on all of them. The pass now keeps pooled activations
# only, and the estimate is 2.8-4.8x XLA's temporary bytes of one neuron's generation (bench
# `temp MB`: Basset layers 2-3, BD-10 layer 10, the example's layer 5): safe, if loose.
CHUNK_FACTOR, WINDOW_FACTOR = 2, 8


# -- devices ----------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def neuron_mesh() -> Mesh:
    """A 1-D mesh over all local devices; its axis is the neuron axis of a GA batch."""
    return Mesh(np.array(jax.local_devices()), (NEURON_AXIS,))


def device_count() -> int:
    return neuron_mesh().size


def shard_neurons(tree):
    """Place a pytree whose leaves all lead with the neuron axis over the devices (one block of
    neurons per device). Unchanged with one device or when the batch does not divide evenly
    (`decode_neuron`'s single neuron)."""
    mesh = neuron_mesh()
    leaves = jax.tree_util.tree_leaves(tree)
    if mesh.size == 1 or not leaves or leaves[0].shape[0] % mesh.size:
        return tree
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec(NEURON_AXIS)))


# -- memory -----------------------------------------------------------------------------
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """'8G', '512M', '1.5GiB', '1000000' -> bytes (binary prefixes)."""
    m = _SIZE.match(str(text))
    if not m:
        raise NmjaxError(f"bad memory size {text!r}: use bytes or a number with K, M, G or T "
                         f"(e.g. 8G)")
    return int(float(m.group(1)) * 1024 ** " KMGT".index(m.group(2).upper() or " "))


def activation_floats(net, layer: int) -> int:
    """Floats per window that the score of `layer` keeps for its input gradient: the one-hot
    window, and for every block below the layer its unfolded input windows (a conv's matmul
    operand), its conv output and its activation."""
    return net.receptive_field(layer) * 4 + sum(
        out_len * width + 2 * out_len * cout
        for out_len, width, cout in block_shapes(net.config, layer))


def ga_bytes_per_neuron(net, layer: int, config) -> int:
    """Estimated temporary bytes of one neuron in one call of the layer's GA program (the
    population is scored in chunks: `nmjax.scoring.chunk_size`)."""
    population = ga.ga_config(net, layer, config).population
    chunk = min(chunk_size(net.config, layer), population)
    return int(CHUNK_FACTOR * chunk * activation_floats(net, layer) * 4
               + WINDOW_FACTOR * population * net.receptive_field(layer) * 16)


def neuron_batch(net, layer: int, config, neurons: int) -> int:
    """Neurons per call of `layer`'s GA program: `config.neuron_batch`, lowered to fit
    `config.memory_budget` (bytes per device; at least one neuron per device), never more than
    the `neurons` to decode, rounded up to a multiple of the device count."""
    devices = device_count()
    batch = min(config.neuron_batch, neurons)
    if config.memory_budget is not None:
        fit = max(1, config.memory_budget // ga_bytes_per_neuron(net, layer, config))
        batch = min(batch, fit * devices)
    return -(-max(batch, 1) // devices) * devices


def ga_temp_bytes(net, layer: int, config, batch: int) -> int:
    """XLA's temporary bytes of one compiled call of the layer's GA program for `batch` neurons
    (`memory_analysis`): what `CHUNK_FACTOR` and `WINDOW_FACTOR` are calibrated against."""
    cfg = ga.ga_config(net, layer, config)
    states, _ = jax.eval_shape(lambda keys: ga.first_states(cfg, list(keys)),
                               jax.random.split(jax.random.key(0), batch))
    neurons = jax.ShapeDtypeStruct((batch,), np.int32)
    compiled = ga.step_program(net, layer, cfg).lower(net.params, states, neurons).compile()
    return int(compiled.memory_analysis().temp_size_in_bytes)
