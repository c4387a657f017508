"""The compiled programs' caches, in one place with one `clear`.

Every function that builds a jitted program is memoised with `@compiled(maxsize)`, so a program
is traced and compiled once per key (network or its config, layer, static settings). A decode
calls `clear` once per layer: no later layer reuses a layer's programs, and a long run would
otherwise keep them all.
"""
from __future__ import annotations

import functools

import jax

_CACHES = []


def compiled(maxsize: int | None = 16):
    """Memoise a builder of compiled programs; `clear` forgets what it built."""

    def wrap(build):
        cached = functools.lru_cache(maxsize=maxsize)(build)
        _CACHES.append(cached)
        return cached

    return wrap


def clear() -> None:
    """Forget every compiled program: the builders' caches and JAX's own."""
    for cache in _CACHES:
        cache.cache_clear()
    jax.clear_caches()
