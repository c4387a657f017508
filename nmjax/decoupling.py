"""Decoupling the shift mixture of a neuron's samples (method-notes §2).

A neuron of layer l sees its motif at S_l shifts (the max-pools below it). Its samples are split
by weighted K-means on the conv feature maps that feed each max-pool, deepest first (layer l-1
down to 1), K = pool^rounds, each sequence weighted by its f. A set is not split when it has
fewer than `min_split` sequences or fewer than K.

`weighted_kmeans` is one jitted program per (set size bucket, feature width, K): k-means++
initialisation (greedy, as scikit-learn), Lloyd iterations until the squared centre shift is below tol * mean feature
variance (as scikit-learn), `restarts` independent runs at once, the lowest inertia kept. Draws
are by inverse CDF, so zero-weight padding rows change nothing and the row bucket of a set is
free; Lloyd reads the features once per iteration (distances to every restart's centres in one
product; cluster sums updated from the rows that changed label).
Layer 1's feature maps are affine in the one-hot input, so they are clustered through an exact
isometry in at most 4N dimensions (`first_conv_isometry`) instead of positions x channels.
"""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

from .arrays import one_hot, power_of_two
from .draws import draw_indices

if TYPE_CHECKING:
    from .config import DecouplingConfig
    from .network import Network


def _sq_dist(x: jax.Array, x_sq: jax.Array, centres: jax.Array) -> jax.Array:
    """(M, K) squared distances, via |x|^2 - 2 x.c + |c|^2, clipped at 0. The 2 scales the
    (M, K) product, not x: XLA hoisted 2 x out of the Lloyd loop as a second copy of x."""
    d = x_sq[:, None] - 2.0 * (x @ centres.T) + jnp.sum(centres * centres, axis=1)[None, :]
    return jnp.maximum(d, 0.0)


def _kmeans_plus_plus(key, x, x_sq, w, k):
    """Greedy weighted k-means++ (as scikit-learn): the first centre drawn by w; each next one
    is the best, by weighted potential, of 2 + floor(ln k) candidates drawn by w * D^2."""
    trials = 2 + int(np.log(k))
    keys = jax.random.split(key, k)
    first = draw_indices(keys[0], w, (1,))[0]
    centres = jnp.zeros((k, x.shape[1]), x.dtype).at[0].set(x[first])
    d2 = _sq_dist(x, x_sq, centres[:1])[:, 0]

    def body(i, state):
        centres, d2 = state
        p = w * d2
        cand = draw_indices(keys[i], jnp.where(p.sum() > 0, p, w), (trials,))
        cand_d2 = jnp.minimum(d2[:, None], _sq_dist(x, x_sq, x[cand]))  # (M, trials)
        best = jnp.argmin(w @ cand_d2)
        return centres.at[i].set(x[cand[best]]), cand_d2[:, best]

    centres, _ = jax.lax.fori_loop(1, k, body, (centres, d2))
    return centres


def _assign(x, x_sq, centres):
    """Nearest centre of every row for every restart: centres (R, K, D) -> labels (M, R) and
    squared distances to them (M, R), from one pass over x."""
    r, k, dim = centres.shape
    d = _sq_dist(x, x_sq, centres.reshape(r * k, dim)).reshape(-1, r, k)
    return jnp.argmin(d, axis=2), jnp.min(d, axis=2)


def _members(labels, w, k):
    """(M, R, K) weights of each row in its cluster of each restart."""
    return jax.nn.one_hot(labels, k, dtype=w.dtype) * w[:, None, None]


def lloyd(x, x_sq, w, centres, tol, max_iter):
    """Weighted Lloyd iterations of R restarts at once, each stopping on its own (squared
    centre shift <= tol, or max_iter); an empty cluster keeps its centre.

    One pass over x per iteration: the weighted cluster sums are updated with the rows whose
    label changed, gathered into the smallest of `gather_sizes` that holds them (a gather costs
    its size, not the count), with a full recomputation when more moved.
    Returns labels (M, R) and the inertia of each restart (R,).
    """
    m = x.shape[0]
    r, k, dim = centres.shape
    gather_sizes = sorted({min(m, 64), max(64, m // 64), max(64, m // 8)})

    def sums_of(labels):
        return jnp.einsum("mrk,md->rkd", _members(labels, w, k), x)

    def updated_sums(sums, old, new):
        moved = jnp.any(old != new, axis=1) & (w > 0)
        count = jnp.sum(moved)

        def gathered(size, sums):
            idx = jnp.nonzero(moved, size=size, fill_value=m)[0]
            rows = jnp.minimum(idx, m - 1)
            weight = w[rows] * (idx < m)
            change = _members(new[rows], weight, k) - _members(old[rows], weight, k)
            return sums + jnp.einsum("trk,td->rkd", change, x[rows])

        branches = [functools.partial(gathered, size) for size in gather_sizes]
        tier = jnp.searchsorted(jnp.array(gather_sizes), count)  # len(gather_sizes): too many
        return jax.lax.switch(tier, branches + [lambda _: sums_of(new)], sums)

    def body(state):
        c, labels, sums, active, it = state
        mass = _members(labels, w, k).sum(0)  # (R, K)
        new = jnp.where(mass[..., None] > 0, sums / jnp.maximum(mass, 1e-30)[..., None], c)
        shift = jnp.sum((new - c) ** 2, axis=(1, 2))
        c = jnp.where(active[:, None, None], new, c)
        it = it + active
        active = active & (shift > tol) & (it < max_iter)
        new_labels, _ = _assign(x, x_sq, c)
        return c, new_labels, updated_sums(sums, labels, new_labels), active, it

    labels, _ = _assign(x, x_sq, centres)
    state = (centres, labels, sums_of(labels), jnp.full(r, max_iter > 0), jnp.zeros(r, jnp.int32))
    centres = jax.lax.while_loop(lambda s: jnp.any(s[3]), body, state)[0]
    labels, d = _assign(x, x_sq, centres)
    return labels, w @ d


@functools.partial(jax.jit, static_argnames=("k", "restarts", "max_iter"))
def weighted_kmeans(key: jax.Array, x: jax.Array, w: jax.Array, *, k: int, restarts: int = 4,
                    tol: float = 1e-4, max_iter: int = 300) -> tuple[jax.Array, jax.Array]:
    """Weighted K-means of rows x (M, D) with weights w (M,) (0 = padding row).

    Returns (labels (M,), inertia): the best of `restarts` k-means++ + Lloyd runs. Labels of
    zero-weight rows are meaningless; padding rows change neither the draws nor the result.
    """
    x = x.astype(jnp.float32)
    w = w.astype(jnp.float32)
    x_sq = jnp.sum(x * x, axis=1)
    total = w.sum()
    mean = (w @ x) / total
    # mean weighted feature variance = (E_w|x|^2 - |E_w x|^2) / D, without an (M, D) temporary
    tol_abs = tol * jnp.maximum((w @ x_sq) / total - jnp.sum(mean * mean), 0.0) / x.shape[1]
    seeds = jax.vmap(lambda key: _kmeans_plus_plus(key, x, x_sq, w, k))(
        jax.random.split(key, restarts))
    labels, inertia = lloyd(x, x_sq, w, seeds, tol_abs, max_iter)
    best = jnp.argmin(inertia)
    return labels[:, best], inertia[best]


def cluster(key: jax.Array, features: np.ndarray, weights: np.ndarray, k: int,
            config: "DecouplingConfig", feature_dim: int | None = None) -> list[np.ndarray]:
    """Split the first len(weights) rows of `features` into k weighted K-means clusters;
    index arrays of the non-empty clusters. Rows beyond len(weights) are padding (weight 0).

    feature_dim: the number of feature dimensions the rows stand for (default: their width),
    so the convergence tolerance (relative to the mean variance per dimension) is that of the
    original features when `features` are an isometric reduction of them.
    """
    m = len(weights)
    w = np.zeros(len(features), np.float32)
    w[:m] = weights
    tol = config.kmeans_tol * features.shape[1] / (feature_dim or features.shape[1])
    labels, _ = weighted_kmeans(key, jnp.asarray(features), jnp.asarray(w), k=k,
                                restarts=config.kmeans_restarts, tol=tol,
                                max_iter=config.kmeans_max_iter)
    labels = np.asarray(labels)[:m]
    return [np.flatnonzero(labels == c) for c in range(k) if np.any(labels == c)]


def padded_rows(m: int) -> int:
    """Row bucket of a set of m sequences, so few programs get compiled: a power of two up to
    8192, then a multiple of 8192. Padding rows (weight 0) change neither the draws nor the
    clusters (`weighted_kmeans`). Finer buckets (8 per octave) cut padding but compiled so many
    programs that a whole-example decode ran out of memory maps in LLVM."""
    return power_of_two(m, 64) if m <= 8192 else -(-m // 8192) * 8192


@functools.partial(jax.jit, donate_argnums=0)
def _put_rows(out: jax.Array, fmap: jax.Array, start: jax.Array, count: jax.Array) -> jax.Array:
    """out with rows start .. start + count - 1 set to the first `count` flattened maps of
    `fmap`; `out` is donated, so it is written in place."""
    rows = fmap.reshape(fmap.shape[0], -1)
    index = start + jnp.arange(rows.shape[0])
    rows = jnp.where((index < start + count)[:, None], rows, 0.0)
    return out.at[index].set(rows, mode="drop")


def feature_map(net: "Network", bases: np.ndarray, layer: int, rows: int | None = None,
                chunk: int = 4096) -> jax.Array:
    """Conv `layer` output (after BN, before activation) over the whole window, flattened,
    in a zero device array of `rows` rows (default len(bases)), written in place chunk by
    chunk: the features exist once (a host array copied to the device had them twice, and
    the layer-3 sets of Basset hold 100,000 x 5,600 values).

    Evaluated in chunks of `chunk` rows and a last one padded to a power of two, so few
    programs get compiled (eager device slicing and concatenation compiled a program for every
    set size, and a whole-example decode ran out of LLVM memory maps).
    """
    eye = np.eye(4, dtype=np.float32)
    out = None
    for i in range(0, len(bases), chunk):
        part = bases[i:i + chunk]
        padded = np.zeros((power_of_two(len(part), 64), bases.shape[1]), np.uint8)
        padded[:len(part)] = part
        fmap = net.conv_output(eye[padded], layer)
        if out is None:
            out = jnp.zeros((rows or len(bases), fmap[0].size), jnp.float32)
        out = _put_rows(out, fmap, np.int32(i), np.int32(len(part)))
    return out


@functools.lru_cache(maxsize=8)
def first_conv_isometry(net: "Network", length: int) -> tuple[np.ndarray, int]:
    """(R (4 * length, r), D): one-hot windows x (flattened) map to x @ R with the same pairwise
    distances as their conv-1 feature maps (D = positions x channels values each).

    Conv 1's output (after its folded BatchNorm, before the activation) is affine in the one-hot
    input, F(x) = x T + b, so |F(a) - F(b)|^2 = (a - b) T T^T (a - b)^T = |a R - b R|^2 with
    R R^T = T T^T (eigendecomposition, rank r <= min(4 * length, D)). K-means on x R is K-means
    on the feature maps (same distances, so the same k-means++ draws, Lloyd steps and inertia,
    up to float rounding at near-ties) in r dimensions instead of D: Basset layer 2 clusters in
    204 instead of 9,900 dimensions, layer 3's conv-1 level in 528 instead of 34,200.
    """
    dim = 4 * length
    basis = np.eye(dim, dtype=np.float32).reshape(dim, length, 4)
    zero = np.asarray(net.conv_output(np.zeros((1, length, 4), np.float32), 1)).reshape(1, -1)
    t = np.asarray(net.conv_output(basis, 1)).reshape(dim, -1).astype(np.float64) - zero
    eigval, eigvec = np.linalg.eigh(t @ t.T)
    keep = eigval > eigval.max() * 1e-10
    return (eigvec[:, keep] * np.sqrt(eigval[keep])).astype(np.float32), t.shape[1]


def decoupling_features(net: "Network", bases: np.ndarray, layer: int, rows: int
                        ) -> tuple[np.ndarray, int]:
    """(features (rows, d), D): what K-means clusters at `layer` (zero padding rows beyond
    len(bases)) and the number of feature-map values they stand for. Layer 1: the exact
    low-dimensional isometry of its feature maps (`first_conv_isometry`); deeper: the maps."""
    if layer > 1:
        fmap = feature_map(net, bases, layer, rows)
        return fmap, fmap.shape[1]
    r, dim = first_conv_isometry(net, bases.shape[1])
    out = np.zeros((rows, r.shape[1]), np.float32)
    out[:len(bases)] = one_hot(bases).reshape(len(bases), -1) @ r
    return out, dim


def decouple(net: "Network", layer: int, bases: np.ndarray, f: np.ndarray, key: jax.Array,
             rounds: int, config: "DecouplingConfig") -> list[np.ndarray]:
    """Split a neuron's samples into shift-consistent subsets (index arrays into `bases`).

    Walks layer-1 .. 1; at layer i with pool p_i > 1 every current set with at least
    max(min_split, K) sequences is clustered with K = p_i ** rounds on conv i's feature map.
    """
    subsets = [np.arange(len(f))]
    for i in range(layer - 1, 0, -1):
        k = net.pools[i - 1] ** rounds
        if k <= 1:
            continue
        nxt = []
        for j, s in enumerate(subsets):
            if len(s) < max(config.min_split, k):
                nxt.append(s)
                continue
            features, dim = decoupling_features(net, bases[s], i, padded_rows(len(s)))
            parts = cluster(jax.random.fold_in(key, i * 100_003 + j), features, f[s], k, config,
                            dim)
            del features  # before the next set's are built
            nxt.extend(s[p] for p in parts)
        subsets = nxt
    return subsets


def _rule_holds(ratios: np.ndarray, config: "DecouplingConfig") -> tuple[bool, float | None,
                                                                      float | None]:
    """(holds, t, p): with at least 10 ratios a one-sample t-test against ratio_threshold, t > 0
    and p < ratio_p_value; with fewer (or identical ratios, t undefined) mean > threshold."""
    if len(ratios) >= 10:
        from scipy.stats import ttest_1samp

        with np.errstate(divide="ignore", invalid="ignore"):
            res = ttest_1samp(ratios, config.ratio_threshold)
        t, p = float(res.statistic), float(res.pvalue)
        if np.isfinite(t):
            return bool(t > 0 and p < config.ratio_p_value), t, p
    return bool(ratios.mean() > config.ratio_threshold), None, None


def rounds_test(ratios: np.ndarray, config: "DecouplingConfig") -> dict:
    """The rounds rule on a layer's per-neuron ratios (`nmjax.summarise.neuron_ratios`): do they sit
    above ratio_threshold (`_rule_holds`)?

    The rule is monotone in the ratios, so it is also tried with every ratio moved down and
    up by ratio_tie_margin: where the two differ the layer is a tie and passes (the fewer
    rounds), so float rounding near the threshold cannot flip the decision. Returns what
    run.json records: neurons, ratio (min, mean, max), test ('t-test' or 'mean'), t and p of
    the ratios as they are (None for the mean test), passed, tie.
    """
    ratios = np.asarray(ratios, np.float64)
    ratios = ratios[np.isfinite(ratios)]
    if len(ratios) == 0:
        return {"neurons": 0, "ratio": None, "test": "none", "t": None, "p": None,
                "passed": True, "tie": False}
    _, t, p = _rule_holds(ratios, config)
    lower = _rule_holds(ratios - config.ratio_tie_margin, config)[0]
    upper = _rule_holds(ratios + config.ratio_tie_margin, config)[0]
    return {"neurons": len(ratios),
            "ratio": {"min": float(ratios.min()), "mean": float(ratios.mean()),
                      "max": float(ratios.max())},
            "test": "mean" if t is None else "t-test", "t": t, "p": p,
            "passed": upper, "tie": upper != lower}
