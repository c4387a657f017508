"""Weighted K-means against scikit-learn, shift decoupling on a planted max-pool mixture."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import t as t_dist
from sklearn.cluster import KMeans

from nmjax.config import DecodeConfig
from nmjax.decoupling import decouple, rounds_test, weighted_kmeans
from nmjax.errors import NmjaxError
from nmjax.motifdb import jaspar_motif
from nmjax.motifs import weighted_ppm
from nmjax.results import NeuronResult
from nmjax.summarise import neuron_ratios
from toy_network import PLANTED, best_offset, toy_network


@pytest.mark.parametrize("k", [3, 9])
def test_weighted_kmeans_matches_sklearn_inertia(k):
    rng = np.random.default_rng(k)
    centres = rng.normal(0, 3, (k + 1, 12))
    x = (centres[rng.integers(0, k + 1, 700)] + rng.normal(0, 1.0, (700, 12))).astype(np.float32)
    w = rng.uniform(0.1, 5.0, 700).astype(np.float32)
    labels, inertia = weighted_kmeans(jax.random.key(0), x, w, k=k, restarts=4)
    ref = KMeans(k, n_init=10, random_state=0).fit(x, sample_weight=w)
    assert float(inertia) <= ref.inertia_ * 1.01
    # the returned inertia is the one of the returned labels
    labels = np.asarray(labels)
    own = sum(np.sum(w[labels == c] * ((x[labels == c] - np.average(x[labels == c], axis=0,
                                                                        weights=w[labels == c])
                                         ) ** 2).sum(1)) for c in np.unique(labels))
    assert own == pytest.approx(float(inertia), rel=1e-3)


def test_zero_weight_rows_do_not_move_centres():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(0, 0.1, (100, 2)), rng.normal(5, 0.1, (100, 2)),
                        np.full((56, 2), 1000.0)]).astype(np.float32)
    w = np.concatenate([np.ones(200), np.zeros(56)]).astype(np.float32)
    labels, inertia = weighted_kmeans(jax.random.key(3), x, w, k=2)
    labels = np.asarray(labels)
    assert len(set(labels[:100])) == 1 and len(set(labels[100:200])) == 1
    assert labels[0] != labels[150]
    assert float(inertia) < 10.0


def test_decoupled_subsets_are_shifted_copies_1bp_apart():
    """Layer-2 neuron 0 sees ELK1 through a pool of 2: the subsets hold it at 2 offsets."""
    net = toy_network()
    rng = np.random.default_rng(0)
    pfm = jaspar_motif(PLANTED[0]).ppm
    n = net.receptive_field(2)
    bases = rng.integers(0, 4, (1200, n)).astype(np.uint8)
    offsets = rng.integers(0, n - len(pfm) + 1, 1200)
    for row, o in zip(bases, offsets):
        row[o:o + len(pfm)] = [rng.choice(4, p=p) for p in pfm]
    f = np.asarray(net.neuron_values(np.eye(4, dtype=np.float32)[bases], 2, 0))
    bases, f = bases[f > 0], f[f > 0]
    assert len(f) > 200
    subsets = decouple(net, 2, bases, f, jax.random.key(0), 1, DecodeConfig(kmeans_restarts=2))
    assert len(subsets) == 2
    assert sorted(np.concatenate(subsets).tolist()) == list(range(len(f)))
    found = [best_offset(weighted_ppm(bases[s], f[s]), PLANTED[0]) for s in subsets]
    assert all(score > 0.8 for _, score in found), found
    assert sorted(o for o, _ in found) in ([2, 3],), found


def test_small_sets_are_not_split():
    net = toy_network()
    bases = np.zeros((49, net.receptive_field(2)), np.uint8)
    f = np.linspace(0.1, 1, 49)
    assert len(decouple(net, 2, bases, f, jax.random.key(0), 1, DecodeConfig())) == 1


def test_rounds_rule():
    cfg = DecodeConfig()
    passed = lambda ratios: rounds_test(ratios, cfg)["passed"]
    assert passed(np.full(5, 0.99))
    assert not passed(np.full(5, 0.90))
    rng = np.random.default_rng(0)
    assert passed(0.99 + 0.01 * rng.normal(size=30))
    assert not passed(0.95 + 0.05 * rng.normal(size=30))
    record = rounds_test(0.99 + 0.01 * rng.normal(size=30), cfg)
    assert record["test"] == "t-test" and record["t"] > 0 and record["p"] < 0.1
    assert record["neurons"] == 30 and record["ratio"]["min"] <= record["ratio"]["mean"]
    assert rounds_test(np.full(5, 0.99), cfg)["t"] is None  # under 10 neurons: the mean


def test_rounds_rule_tie_margin_makes_the_boundary_deterministic():
    """Ratios whose t-test sits at p = ratio_p_value: a float-rounding nudge either way flips
    the bare rule, not the rule with its tie margin, which passes both and says it was a tie."""
    n = 30
    spread = np.random.default_rng(1).normal(size=n)
    spread = (spread - spread.mean()) / spread.std(ddof=1) * 0.02
    at_p = 0.95 + t_dist.ppf(1 - 0.1 / 2, n - 1) * 0.02 / np.sqrt(n)  # mean where p = 0.1
    bare = DecodeConfig(ratio_tie_margin=0.0)
    nudges = (-1e-7, 1e-7)
    assert [rounds_test(at_p + spread + e, bare)["passed"] for e in nudges] == [False, True]
    for e in nudges:
        record = rounds_test(at_p + spread + e, DecodeConfig())
        assert record["passed"] and record["tie"]
        assert record["p"] == pytest.approx(0.1, abs=1e-4)
    clear = rounds_test(at_p + spread - 0.01, DecodeConfig())
    assert not clear["passed"] and not clear["tie"]  # farther than the margin: no tie


def test_the_rounds_ratio_rules():
    live = NeuronResult(np.zeros((2, 3, 4)), np.array([60, 60]), np.array([1.0, 0.5]),
                        np.array([0.9, 0.5]), np.zeros((2, 3), np.uint8), 2, 0, 5, 1)
    dead = NeuronResult(np.zeros((0, 3, 4)), np.zeros(0, np.int64), np.zeros(0), np.zeros(0),
                        np.zeros((0, 3), np.uint8), 2, 1, 5, 1)
    np.testing.assert_allclose(neuron_ratios([live, dead], "pooled"), [0.9])
    np.testing.assert_allclose(neuron_ratios([live, dead], "per-subset"), [1.0])  # 0.5 / 0.5
    with pytest.raises(NmjaxError, match="unknown rounds_ratio 'max'"):
        DecodeConfig(rounds_ratio="max")
    with pytest.raises(NmjaxError, match="ratio_tie_margin"):
        DecodeConfig(ratio_tie_margin=-1.0)


def test_first_conv_isometry_preserves_feature_distances_and_clusters():
    """Clustering layer 1 through the isometry gives the feature maps' distances and partition."""
    from nmjax.decoupling import cluster, decoupling_features, feature_map

    net = toy_network()
    rng = np.random.default_rng(5)
    n = net.receptive_field(2)
    bases = rng.integers(0, 4, (300, n)).astype(np.uint8)
    for row, o in zip(bases[:150], rng.integers(0, 3, 150)):  # two planted groups
        row[o:o + 8] = [0, 1, 2, 3, 3, 2, 1, 0]
    full = np.asarray(feature_map(net, bases, 1, 320), np.float64)  # same padding rows
    reduced, dim = decoupling_features(net, bases, 1, 320)
    assert dim == full.shape[1] and reduced.shape[1] <= min(4 * n, dim)
    assert np.all(reduced[300:] == 0)
    d_full = ((full[:300, None] - full[None, :300]) ** 2).sum(-1)
    d_reduced = ((reduced[:300, None].astype(np.float64) - reduced[None, :300]) ** 2).sum(-1)
    np.testing.assert_allclose(d_reduced, d_full, rtol=1e-4, atol=1e-4 * d_full.max())
    f = rng.uniform(0.1, 2.0, 300).astype(np.float32)
    cfg = DecodeConfig(kmeans_restarts=2)
    parts_full = cluster(jax.random.key(2), full.astype(np.float32), f, 3, cfg)
    parts_reduced = cluster(jax.random.key(2), reduced, f, 3, cfg, dim)
    assert sorted(map(tuple, parts_full)) == sorted(map(tuple, parts_reduced))


def _reference_lloyd(x, w, centres, tol, max_iter):
    """Plain weighted Lloyd in float64, one restart: labels and inertia."""
    x, c = x.astype(np.float64), centres.astype(np.float64)
    for _ in range(max_iter):
        labels = ((x[:, None] - c[None]) ** 2).sum(-1).argmin(1)
        new = np.array([np.average(x[labels == j], axis=0, weights=w[labels == j])
                        if w[labels == j].sum() > 0 else c[j] for j in range(len(c))])
        shift, c = ((new - c) ** 2).sum(), new
        if shift <= tol:
            break
    d = ((x[:, None] - c[None]) ** 2).sum(-1)
    return d.argmin(1), float((w * d.min(1)).sum())


def test_lloyd_with_incremental_sums_is_plain_lloyd():
    """The restarts-at-once Lloyd (cluster sums updated from the rows that changed label, a full
    recomputation when many did) gives plain Lloyd's labels and inertia from the same seeds."""
    from nmjax.decoupling import lloyd

    rng = np.random.default_rng(11)
    x = (rng.normal(0, 1.5, (5, 6))[rng.integers(0, 5, 1500)]
         + rng.normal(0, 1.0, (1500, 6))).astype(np.float32)
    w = rng.uniform(0.1, 3.0, 1500).astype(np.float32)
    seeds = x[rng.choice(1500, (3, 4), replace=False)]  # poor seeds: many rows move at first
    xj = jnp.asarray(x)
    labels, inertia = jax.jit(lloyd, static_argnums=5)(xj, jnp.sum(xj * xj, axis=1), w, seeds,
                                                        1e-6, 300)
    for r in range(3):
        ref_labels, ref_inertia = _reference_lloyd(x, w, seeds[r], 1e-6, 300)
        assert np.array_equal(np.asarray(labels[:, r]), ref_labels)
        assert float(inertia[r]) == pytest.approx(ref_inertia, rel=1e-4)


def test_padding_rows_change_nothing():
    """Zero-weight padding rows (any number, any values) change neither draws nor clusters, so
    the row bucket of a set does not change its decoupling."""
    rng = np.random.default_rng(4)
    x = (rng.normal(0, 2.0, (4, 5))[rng.integers(0, 4, 300)]
         + rng.normal(0, 1.0, (300, 5))).astype(np.float32)
    w = rng.uniform(0.1, 2.0, 300).astype(np.float32)
    labels, inertia = weighted_kmeans(jax.random.key(5), x, w, k=3, restarts=2)
    for pad in (20, 212):
        xp = np.concatenate([x, rng.normal(0, 50.0, (pad, 5)).astype(np.float32)])
        wp = np.concatenate([w, np.zeros(pad, np.float32)])
        lp, ip = weighted_kmeans(jax.random.key(5), xp, wp, k=3, restarts=2)
        assert np.array_equal(np.asarray(lp)[:300], np.asarray(labels))
        assert float(ip) == pytest.approx(float(inertia), rel=1e-5)


def test_feature_map_chunks_fill_one_device_array():
    """Maps built chunk by chunk (an uneven last chunk) into one device array of `rows` rows:
    each row is its sequence's conv output, padding rows are zero."""
    from nmjax.decoupling import feature_map

    net = toy_network()
    rng = np.random.default_rng(7)
    bases = rng.integers(0, 4, (150, net.receptive_field(2))).astype(np.uint8)
    out = feature_map(net, bases, 2, rows=200, chunk=64)
    assert isinstance(out, jax.Array) and out.shape[0] == 200
    direct = np.asarray(net.conv_output(np.eye(4, dtype=np.float32)[bases], 2)).reshape(150, -1)
    np.testing.assert_allclose(np.asarray(out[:150]), direct, rtol=1e-5, atol=1e-5)
    assert not np.any(np.asarray(out[150:]))
