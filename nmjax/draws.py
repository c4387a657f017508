"""Random draws shared by the GA (mutation, roulette selection) and K-means++ seeding."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def draw_indices(key: jax.Array, p: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
    """Inverse-CDF draws from the last axis of probabilities/weights p (not normalised).

    One uniform per draw (jax.random.categorical draws one Gumbel per category and draw,
    which dominated a generation for roulette selection over thousands of parents). Entries of
    zero weight are never drawn and do not change the draws (K-means padding rows rely on it).
    """
    cdf = jnp.cumsum(p, axis=-1)
    u = jax.random.uniform(key, shape + p.shape[:-1]) * cdf[..., -1]
    if p.ndim == 1:
        idx = jnp.searchsorted(cdf, u, side="right", method="sort")
    else:
        idx = jnp.sum(cdf <= u[..., None], axis=-1)
    return jnp.minimum(idx, p.shape[-1] - 1)
