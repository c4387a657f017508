"""GA sampling and exhaustive enumeration on the hand-built network with planted motifs."""
import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest

from nmjax import ga, sampling
from nmjax.config import DecodeConfig
from nmjax.decoder import neuron_key
from nmjax.motifs import consensus, consensus_string, value_bins, weighted_ppm
from nmjax.network import ConvSpec, Network, NetworkConfig
from nmjax.slots import SlotUsage, ga_stream, run_ga
from toy_network import PLANTED, best_offset

CONFIG = DecodeConfig(population=400, max_generations=30, neuron_batch=2)
GA_CONFIG = dataclasses.replace(CONFIG, enumerate_below=0)  # force the GA on layer 1


@pytest.fixture(scope="module")
def enumerated(net):
    neurons = list(range(4))
    return sampling.enumerate_layer(net, 1, neurons, [neuron_key(0, 1, n) for n in neurons],
                                    CONFIG)


@pytest.fixture(scope="module", params=["reference", "continuous"])
def ga_layer1(net, request):
    neurons = list(range(4))
    return request.param, run_ga(net, 1, neurons, [neuron_key(0, 1, n) for n in neurons],
                                          dataclasses.replace(GA_CONFIG, mutation=request.param))


def test_pack_roundtrip_and_dedup():
    rng = np.random.default_rng(0)
    bases = rng.integers(0, 4, (50, 13)).astype(np.uint8)
    assert np.array_equal(sampling.unpack_bases(sampling.pack_bases(bases), 13), bases)
    s = sampling.SampleSet.empty(13)
    s.add(np.concatenate([bases, bases[:20]]), np.concatenate([np.arange(1, 51), np.arange(1, 21)
                                                               ]).astype(np.float32))
    s.deduplicate()
    assert len(s.f) == 50 and sorted(s.f.tolist()) == list(range(1, 51))
    assert np.array_equal(s.bases()[np.argsort(s.f)], bases)


def test_cap_keeps_at_most_per_bin():
    rng = np.random.default_rng(1)
    n = 3000
    s = sampling.SampleSet.empty(20)
    s.add(rng.integers(0, 4, (n, 20)).astype(np.uint8), rng.exponential(1.0, n).astype(np.float32))
    top = s.f.max()
    s.cap(1000, 20, 100, np.random.default_rng(0))
    counts = np.bincount(value_bins(s.f, top, 20), minlength=20)
    assert counts.max() <= 100 and len(s.f) < n
    assert s.f.max() == top  # the top bin holds few sequences, all kept


def test_population_size_rule():
    assert [ga.population_size(n) for n in (19, 51, 132, 200)] == [2000, 2000, 5000, 5000]


def test_mutation_rules():
    x = jnp.asarray(np.eye(4)[[0]][None], jnp.float32)          # current base A
    small = jnp.asarray([[[0.0, 1e-4, -1e-4, 0.0]]])
    ref = ga.mutation_distribution(x, small, "reference")
    assert float(ref[0, 0, 0]) > 0.99                           # the current base keeps its mass
    paper = ga.mutation_distribution(x, small, "paper")
    assert float(paper[0, 0, 1]) < 1e-3 < float(paper[0, 0, 2])  # tiny g > 0 -> ~0: the flaw
    cont = ga.mutation_distribution(x, small, "continuous")
    np.testing.assert_allclose(np.asarray(cont[0, 0]), 0.25, atol=1e-3)
    zero = ga.mutation_distribution(x, -2 * x, "reference")  # all-zero row -> uniform
    np.testing.assert_allclose(np.asarray(zero), 0.25)
    for q in (ref, paper, cont):
        np.testing.assert_allclose(np.asarray(q).sum(-1), 1.0, rtol=1e-6)


def test_enumeration_recovers_planted_motifs(enumerated):
    for (bases, f), matrix_id in zip(enumerated, PLANTED):
        assert len(f) > 50 and (f > 0).all() and np.all(np.diff(f) <= 0)
        offset, score = best_offset(weighted_ppm(bases, f), matrix_id)
        assert offset == 0 and score > 0.85, (matrix_id, offset, score)


def test_ga_and_enumeration_agree_on_a_10bp_receptive_field(enumerated, ga_layer1):
    rule, (sets, generations) = ga_layer1
    assert all(1 < g <= CONFIG.max_generations for g in generations)
    for (eb, ef), (gb, gf), matrix_id in zip(enumerated, sets, PLANTED):
        e_ppm, g_ppm = weighted_ppm(eb, ef), weighted_ppm(gb, gf)
        assert (gf > 0).all() and len(np.unique(sampling.pack_bases(gb), axis=0)) == len(gf)
        assert gf.max() == pytest.approx(ef.max(), rel=1e-5)   # the GA finds the best sequence
        inf = e_ppm.max(1) > 0.8                               # informative positions
        assert consensus_string(consensus(g_ppm[inf])) == consensus_string(consensus(e_ppm[inf]))
        # the reference rule writes the gradient's best base wherever the gradient is large
        # (here: log-odds weights), so its few samples give a sharper PPM; the continuous rule
        # samples most of the f > 0 sequences and reproduces the enumerated PPM
        assert np.abs(e_ppm - g_ppm).mean() < (0.08 if rule == "reference" else 0.01), matrix_id
        if rule == "continuous":
            assert len(gf) > 0.4 * len(ef)


def test_ga_is_deterministic_and_keys_are_per_neuron(net):
    keys = [neuron_key(3, 1, n) for n in (0, 1, 2, 3)]
    a, _ = run_ga(net, 1, [0, 1, 2, 3], keys, GA_CONFIG)
    b, _ = run_ga(net, 1, [0, 1, 2, 3], keys, GA_CONFIG)
    start, placed = ga.first_states(ga.ga_config(net, 1, GA_CONFIG),
                                    [neuron_key(3, 1, 0), neuron_key(4, 1, 0)])
    start = start.bases
    assert not np.asarray(placed).any()  # unseeded
    assert not np.array_equal(start[0], start[1])
    for (ab, af), (bb, bf) in zip(a, b):
        assert np.array_equal(ab, bb) and np.array_equal(af, bf)


def test_ga_generation_keeps_population_and_elites(net):
    settings = ga.ga_config(net, 2, CONFIG)   # the program test_decode uses too
    step = ga.step_program(net, 2, settings)
    pop, _ = ga.first_states(settings, [neuron_key(0, 2, n) for n in range(2)])
    for _ in range(3):
        pop, out = step(net.params, pop, jnp.arange(2))
    assert pop.bases.shape == (2, 400, settings.length)
    f = np.asarray(out.f[0])
    elites = np.asarray(out.bases[0])[np.argsort(-f, kind="stable")[:40]]
    nxt = np.asarray(pop.bases[0])
    assert all((nxt[:40] == e).all(1).any() for e in elites)      # elites carried over
    rotated = [np.roll(e, s) for e in elites for s in (-1, 1)]     # S = 2: shifted by 1 bp
    assert all(any((r == row).all() for r in rotated) for row in nxt[40:120])


def test_bf16_ga_records_float32_values_of_its_samples(net):
    """precision='bf16' runs the GA's passes in bfloat16, then re-scores what it keeps."""
    config = dataclasses.replace(CONFIG, precision="bf16", max_generations=8)
    assert ga.ga_config(net, 2, config).precision == "bf16"
    assert ga.ga_config(net, 2, CONFIG).precision == "fp32"  # 'auto' on 4 channels
    [(bases, f)], _ = run_ga(net, 2, [1], [neuron_key(0, 2, 1)], config)
    assert len(f) > 100 and np.all(f > 0) and np.all(np.diff(f) <= 0)
    exact = np.asarray(net.neuron_values(jnp.eye(4)[bases], 2, 1)).ravel()
    np.testing.assert_allclose(f, exact, rtol=1e-5, atol=1e-6)


def _one_layer_net(width: int, kernel: np.ndarray, bias: float) -> Network:
    config = NetworkConfig(convs=(ConvSpec(width, 1, 4, "relu", pool=1),), source="test")
    return Network(config, {"conv1": {"kernel": kernel.astype(np.float32).reshape(width, 4, 1),
                                      "bias": np.array([bias], np.float32)}})


def test_enumeration_keeps_every_window_without_the_cap():
    """A 6 bp filter with f > 0 on about half of the 4,096 windows: capped at 200 by default,
    all of them kept with cap_enumerated=False (the authors' reading)."""
    kernel = np.random.default_rng(0).normal(size=(6, 4))
    net = _one_layer_net(6, kernel, 0.0)
    windows = np.stack(np.meshgrid(*[np.arange(4)] * 6, indexing="ij"), -1).reshape(-1, 6)
    positive = int(np.sum(kernel[np.arange(6), windows].sum(1) > 0))
    assert positive > 1000
    small = dataclasses.replace(CONFIG, max_samples=200, per_bin=10)
    for cap, want in ((True, None), (False, positive)):
        [(bases, f)] = sampling.enumerate_layer(net, 1, [0], [neuron_key(0, 1, 0)],
                                                dataclasses.replace(small, cap_enumerated=cap))
        assert len(f) <= 200 if cap else len(f) == want


@pytest.mark.parametrize("patience", [10, 11], ids=["paper", "authors"])
def test_ga_stops_after_patience_generations_without_a_better_mean(patience):
    """f is the same for every sequence, so only generation 1 improves the mean."""
    net = _one_layer_net(12, np.zeros((12, 4)), 1.0)
    config = dataclasses.replace(GA_CONFIG, population=50, patience=patience)
    _, [generations] = run_ga(net, 1, [0], [neuron_key(0, 1, 0)], config)
    assert generations == 1 + patience


def test_refilled_slots_give_the_samples_of_one_neuron_per_call(net):
    """Three slots for four neurons: the slot of the first neuron to stop takes the fourth."""
    neurons = [0, 1, 2, 3]
    keys = [neuron_key(0, 1, n) for n in neurons]
    alone = [run_ga(net, 1, [n], [k], GA_CONFIG) for n, k in zip(neurons, keys)]
    usage = SlotUsage()
    shared = {i: (samples, g) for i, samples, g in
              ga_stream(net, 1, neurons, keys, GA_CONFIG, None, 3, usage)}
    generations = [gens[0] for _, gens in alone]
    assert len(set(generations)) > 1, generations  # neurons stop at different generations
    for i, ([(bases, f)], [g]) in enumerate(alone):
        (shared_bases, shared_f), shared_g = shared[i]
        assert shared_g == g
        assert np.array_equal(shared_bases, bases) and np.array_equal(shared_f, f)
    # every slot-generation is a neuron's generation or idle
    assert usage.slot_generations == sum(generations) + usage.idle_generations
    # fixed batches of 3 (the last one padded) run each batch until its slowest neuron stops
    fixed = sum(3 * max(generations[i:i + 3]) for i in range(0, len(neurons), 3))
    assert usage.slot_generations < fixed, (usage, fixed)
