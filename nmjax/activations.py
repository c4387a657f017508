"""Activation functions by name, as the architectures and the converters spell them."""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from .errors import ModelError

_ACTIVATIONS: dict[str, Callable] = {
    "linear": lambda x: x,
    "relu": jax.nn.relu,
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "elu": jax.nn.elu,
    "selu": jax.nn.selu,
    "softplus": jax.nn.softplus,
    "exponential": jnp.exp,
    "gelu": lambda x: jax.nn.gelu(x, approximate=False),
    "silu": jax.nn.silu,
    "swish": jax.nn.silu,
    "softmax": lambda x: jax.nn.softmax(x, axis=-1),
}


# activations f with max(f(a), f(b)) == f(max(a, b))
_NON_DECREASING = frozenset({"linear", "relu", "sigmoid", "tanh", "elu", "selu", "softplus",
                             "exponential"})


def leaky_slope(name: str) -> float | None:
    """The negative slope of a `leaky_relu:<slope>` activation name (None for another name)."""
    return float(name.split(":", 1)[1]) if name.startswith("leaky_relu:") else None


def commutes_with_max_pool(name: str) -> bool:
    """Whether an activation is non-decreasing (a leaky ReLU of slope >= 0 included), so that
    max-pooling it is pooling, then applying it."""
    slope = leaky_slope(name)
    return slope >= 0 if slope is not None else name in _NON_DECREASING


def activation_fn(name: str) -> Callable:
    """The elementwise function for an activation name (`leaky_relu:0.3` carries its slope)."""
    slope = leaky_slope(name)
    if slope is not None:
        return lambda x: jax.nn.leaky_relu(x, slope)
    try:
        return _ACTIVATIONS[name]
    except KeyError:
        raise ModelError(f"unsupported activation {name!r}; supported: "
                         f"{', '.join(sorted(_ACTIVATIONS))}, leaky_relu:<slope>") from None


def is_known_activation(name: str) -> bool:
    try:
        activation_fn(name)
        return True
    except ModelError:
        return False
