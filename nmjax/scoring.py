"""Population scoring for the genetic algorithm: a neuron's value f and its input gradient.

`make_score_fn(net, layer)` returns a pure function
    score(params, x, neuron) -> (f, g)
for a population `x` of one-hot windows, shape (P, N_layer, 4): f has shape (P,), g = df/dx has
shape (P, N_layer, 4). `neuron` is a traced int, so one compiled program serves a whole layer
(and `jax.vmap` over neurons batches many neurons into one program).
"""
from __future__ import annotations

import jax

from .network import Network


def make_score_fn(net: Network, layer: int):
    """Value and input gradient of neuron `neuron` of `layer` for a population of windows."""
    f = net.neuron_fn(layer)
    value_and_grad = jax.vmap(jax.value_and_grad(f, argnums=1), in_axes=(None, 0, None))

    def score(params, x, neuron):
        return value_and_grad(params, x, neuron)

    return score
