"""The baseline motif estimators (nmjax/baselines.py) on hand-made cases."""
import numpy as np
import pytest

from nmjax.baselines import baseline_ppm, saliency_ppm
from toy_network import PLANTED, planted_consensus, toy_network

# Five 3-bp samples (bases 0..3 = ACGT) and their activations; A = 10, A/2 = 5.
BASES = np.array([[0, 0, 0],    # f = 1
                  [1, 1, 1],    # f = 4
                  [2, 3, 0],    # f = 10
                  [3, 3, 1],    # f = 6
                  [0, 2, 2]])   # f = 5: not above A/2
F = np.array([1.0, 4.0, 10.0, 6.0, 5.0])


def test_kelley_averages_only_samples_above_half_the_max():
    want = np.array([[0, 0, 0.5, 0.5],      # G, T
                     [0, 0, 0, 1.0],        # T, T
                     [0.5, 0.5, 0, 0]])     # A, C
    np.testing.assert_allclose(baseline_ppm("kelley", None, 1, 0, BASES, F), want)


def test_alipanahi_averages_every_sample():
    want = np.array([[2, 1, 1, 1],
                     [1, 1, 1, 2],
                     [2, 2, 1, 0]]) / 5
    np.testing.assert_allclose(baseline_ppm("alipanahi", None, 1, 0, BASES, F), want)


def test_unknown_baseline_is_refused():
    with pytest.raises(ValueError, match="unknown baseline"):
        baseline_ppm("deeplift", None, 1, 0, BASES, F)


def _expected_saliency(grad: np.ndarray) -> np.ndarray:
    q = np.maximum(0.0, grad - grad.mean(1, keepdims=True))
    out = np.full(grad.shape, 0.25)
    rows = q.sum(1) > 0
    out[rows] = q[rows] / q.sum(1, keepdims=True)[rows]
    return out


def test_saliency_is_the_gradient_at_the_best_sample():
    """Toy layer 2, neuron 0 reads layer-1 filter 0 (ELK1 log-odds, width 10) through ReLU
    and a max-pool of 2: at a sequence holding ELK1 at offset 2 the input gradient is that
    filter's kernel on bases 2..11 and zero elsewhere; at a random sequence filter 0 is off
    and the gradient (so the PPM) is flat."""
    net = toy_network()
    kernel = np.asarray(net.params["conv1"]["kernel"], np.float64)[:, :, 0]  # (10, 4)
    rng = np.random.default_rng(0)
    width = net.receptive_field(2)
    best = rng.integers(0, 4, width)
    site = planted_consensus(PLANTED[0])   # 9 bp; kernel row 9 is zero
    best[2:2 + len(site)] = ["ACGT".index(b) for b in site]
    other = np.array([0, 2, 1, 3] * 4)[:width]  # no ELK1 site: filter 0 stays off
    bases = np.stack([other, best, other])
    f = np.array([0.5, 3.0, 1.0])

    grad = np.zeros((width, 4))
    grad[2:12] = kernel
    want = _expected_saliency(grad)
    got = baseline_ppm("saliency", net, 2, 0, bases, f)
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert np.abs(got[2:12] - 0.25).max() > 0.2           # the motif is visible
    np.testing.assert_allclose(saliency_ppm(net, 2, 0, other), 0.25, atol=1e-6)
