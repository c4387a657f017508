"""The fast population scorer against autodiff of the reference `Network.neuron_fn`."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nmjax.errors import NmjaxError
from nmjax.network import ConvSpec, Network, NetworkConfig, check_params
from nmjax.scoring import fold_windows, make_score_fn, make_value_fn, unfold_windows

POPULATION = 24


def _random_network(specs: tuple[ConvSpec, ...], seed: int) -> Network:
    """Random kernels scaled so every layer's pre-activation has unit spread."""
    rng = np.random.default_rng(seed)
    params = {}
    for l, s in enumerate(specs, start=1):
        fan_in = s.kernel_width * s.in_channels
        params[f"conv{l}"] = {
            "kernel": rng.normal(0, 1.5 / np.sqrt(fan_in),
                                 (s.kernel_width, s.in_channels, s.channels)).astype(np.float32),
            "bias": rng.normal(0.1, 0.2, s.channels).astype(np.float32)}
        if s.post_affine:
            params[f"conv{l}_post_scale"] = rng.uniform(0.5, 1.5, s.channels).astype(np.float32)
            params[f"conv{l}_post_shift"] = rng.normal(0, 0.2, s.channels).astype(np.float32)
    config = NetworkConfig(specs, source="test_scoring")
    check_params(config, params, "test network")
    return Network(config, params)


NETWORKS = {
    # Basset-like: relu, max-pools of 3 and 2, wide first kernel.
    "relu_pool": ((ConvSpec(9, 8, 4, "relu", 3), ConvSpec(5, 6, 8, "relu", 2),
                   ConvSpec(3, 5, 6, "relu", 1)), 0),
    # Smooth activations and a BatchNorm after the activation (post_affine).
    "elu_affine": ((ConvSpec(5, 6, 4, "elu", 2, post_affine=True),
                    ConvSpec(3, 7, 6, "tanh", 1, post_affine=True), ConvSpec(3, 4, 7, "relu", 1)),
                   1),
}


@pytest.fixture(scope="module", params=sorted(NETWORKS))
def net(request) -> Network:
    specs, seed = NETWORKS[request.param]
    return _random_network(specs, seed)


def _population(net: Network, layer: int, seed: int) -> jax.Array:
    bases = np.random.default_rng(seed).integers(0, 4, (POPULATION, net.receptive_field(layer)))
    return jax.nn.one_hot(bases, 4, dtype=jnp.float32)


def _reference(net: Network, layer: int, x: jax.Array, neuron: int):
    f = jax.vmap(jax.value_and_grad(net.neuron_fn(layer), argnums=1), in_axes=(None, 0, None))
    return jax.jit(f)(net.params, x, jnp.int32(neuron))


def test_unfold_windows_lists_every_window():
    h = jnp.arange(2 * 5 * 3, dtype=jnp.float32).reshape(2, 5, 3)
    u = unfold_windows(h, 2)
    assert u.shape == (2, 4, 6)
    np.testing.assert_array_equal(u[1, 3], jnp.concatenate([h[1, 3], h[1, 4]]))


def test_fold_windows_is_the_transpose_of_unfold_windows():
    rng = np.random.default_rng(0)
    h = jnp.asarray(rng.normal(size=(3, 9, 5)), jnp.float32)
    u = jnp.asarray(rng.normal(size=(3, 6, 4 * 5)), jnp.float32)
    lhs = jnp.sum(unfold_windows(h, 4) * u)
    rhs = jnp.sum(h * fold_windows(u, 4))
    assert fold_windows(u, 4).shape == h.shape
    np.testing.assert_allclose(lhs, rhs, rtol=1e-5)


def test_pool_max_matches_network_and_routes_gradient_to_first_maximum():
    from nmjax.network import maxpool
    from nmjax.scoring import pool_grad, pool_max

    a = jnp.asarray([[[1.0, 2.0], [1.0, 0.5], [0.0, 2.0], [3.0, 1.0], [3.0, 1.0], [9.0, 9.0],
                      [7.0, 7.0]]])  # ties in both windows of both channels; 1 left over
    d = jnp.asarray([[[1.0, 10.0], [100.0, 1000.0]]])
    pooled, argmax = pool_max(a, 3)
    np.testing.assert_array_equal(pooled, maxpool(a, 3))
    got = pool_grad(d, argmax, 3, a.shape[1])
    want = np.zeros((1, 7, 2), np.float32)
    want[0, [0, 0, 5, 5], [0, 1, 0, 1]] = [1.0, 10.0, 100.0, 1000.0]  # first max of each window
    np.testing.assert_array_equal(got, want)
    # without ties it is JAX's gradient
    b = a + jnp.arange(14.0).reshape(1, 7, 2) * 1e-3
    pooled, argmax = pool_max(b, 3)
    np.testing.assert_allclose(pool_grad(d, argmax, 3, b.shape[1]),
                               jax.grad(lambda b: jnp.sum(maxpool(b, 3) * d))(b))


@pytest.mark.parametrize("layer", [1, 2, 3])
def test_fp32_score_matches_autodiff_of_neuron_fn(net, layer):
    score = jax.jit(make_score_fn(net, layer))
    x = _population(net, layer, seed=layer)
    for neuron in (0, net.channels(layer) - 1):
        f, g = score(net.params, x, jnp.int32(neuron))
        f_ref, g_ref = _reference(net, layer, x, neuron)
        assert f.shape == (POPULATION,) and g.shape == x.shape
        np.testing.assert_allclose(f, f_ref, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(g, g_ref, rtol=1e-5, atol=1e-5)
        assert float(jnp.abs(g_ref).max()) > 0  # a non-trivial gradient was compared


def test_value_fn_matches_neuron_values(net):
    layer = net.num_conv_layers
    x = _population(net, layer, seed=7)
    f = jax.jit(make_value_fn(net, layer))(net.params, x, jnp.int32(2))
    np.testing.assert_allclose(f, net.neuron_values(x, layer, 2), rtol=1e-5, atol=1e-5)


def test_vmap_over_neurons_equals_one_neuron_at_a_time(net):
    layer = net.num_conv_layers
    score = make_score_fn(net, layer)
    neurons = jnp.arange(3, dtype=jnp.int32)
    xs = jnp.stack([_population(net, layer, seed=s) for s in range(3)])
    f_b, g_b = jax.jit(jax.vmap(score, in_axes=(None, 0, 0)))(net.params, xs, neurons)
    for i in range(3):
        f, g = jax.jit(score)(net.params, xs[i], neurons[i])
        np.testing.assert_allclose(f_b[i], f, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(g_b[i], g, rtol=1e-5, atol=1e-6)


def test_population_chunks_give_the_same_scores(net):
    layer = net.num_conv_layers
    x = _population(net, layer, seed=5)  # 24 windows: chunks of 7 leave a padded remainder
    f, g = jax.jit(make_score_fn(net, layer))(net.params, x, jnp.int32(1))
    f_c, g_c = jax.jit(make_score_fn(net, layer, population_chunk=7))(net.params, x, jnp.int32(1))
    v_c = jax.jit(make_value_fn(net, layer, population_chunk=7))(net.params, x, jnp.int32(1))
    assert f_c.shape == f.shape == v_c.shape and g_c.shape == g.shape
    np.testing.assert_allclose(f_c, f, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(v_c, f, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g_c, g, rtol=1e-5, atol=1e-6)


def test_bf16_score_is_close_to_fp32(net):
    """Documented bf16 tolerance: |f - f32| <= 3e-2 * max|f32|, gradient cosine >= 0.99."""
    layer = net.num_conv_layers
    x = _population(net, layer, seed=11)
    f32, g32 = jax.jit(make_score_fn(net, layer))(net.params, x, jnp.int32(1))
    f16, g16 = jax.jit(make_score_fn(net, layer, precision="bf16"))(net.params, x, jnp.int32(1))
    assert f16.dtype == jnp.float32 and g16.dtype == jnp.float32
    assert float(jnp.abs(f16 - f32).max()) <= 3e-2 * float(jnp.abs(f32).max())
    cosine = jnp.sum(g16 * g32) / (jnp.linalg.norm(g16) * jnp.linalg.norm(g32))
    assert float(cosine) >= 0.99
    assert not np.array_equal(np.asarray(f16), np.asarray(f32))  # bf16 really ran


def test_bad_precision_and_layer_are_named(net):
    with pytest.raises(NmjaxError, match="precision 'fp16'"):
        make_score_fn(net, 1, precision="fp16")
    with pytest.raises(NmjaxError, match="conv layer 9"):
        make_score_fn(net, 9)
    with pytest.raises(NmjaxError, match="population_chunk"):
        make_score_fn(net, 1, population_chunk=0)


def test_bench_flop_count_by_hand():
    from nmjax.benchkit import forward_flops

    specs, seed = NETWORKS["relu_pool"]
    net = _random_network(specs, seed)
    assert net.receptive_field(3) == 38
    # conv1: 30 positions x (9 x 4) x 8; pool 3 -> 10; conv2: 6 x (5 x 8) x 6; pool 2 -> 3;
    # neuron: 1 x (3 x 6); two FLOPs per multiply-add.
    assert forward_flops(net, 3) == 2 * (30 * 36 * 8 + 6 * 40 * 6 + 18)


def test_bench_random_network_has_batchnorm_statistics():
    from nmjax.benchkit import random_network

    specs, _ = NETWORKS["relu_pool"]
    config = NetworkConfig(specs, input_length=200)
    net = random_network(config, seed=3, batch=32)
    x = jax.nn.one_hot(np.random.default_rng(9).integers(0, 4, (32, 200)), 4)
    for layer in (1, 2, 3):
        z = np.asarray(net.conv_output(x, layer))
        std = z.std((0, 1))
        assert np.all((std > 0.3) & (std < 2.0)), (layer, std)  # gamma ~ U(0.5, 1.5)
        assert abs(float(z.mean())) < 1.0


def test_bench_compile_clock_counts_compiles_not_cached_calls():
    from nmjax.benchkit import compile_clock

    clock = compile_clock()
    fn = jax.jit(lambda x: jnp.tanh(x) @ x.T + 3.0)
    fn(jnp.ones((7, 5))).block_until_ready()
    compiled = clock()
    assert compiled > 0
    fn(jnp.ones((7, 5))).block_until_ready()  # cached: no new compile
    assert clock() == compiled
