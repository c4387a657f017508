"""Seeding layer 2 of the toy network (kernel 3 after a pool of 2) with layer-1 motifs."""
import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest

from nmjax import ga
from nmjax.config import DecodeConfig
from nmjax.decoder import neuron_key
from nmjax.errors import NmjaxError
from nmjax.results import LayerResult, NeuronResult
from nmjax.seeding import equal_mass, motif_cores, seeding_for
from nmjax.slots import run_ga
from toy_network import PLANTED, WIDTH, planted_consensus, toy_network

CONFIG = DecodeConfig(population=400, max_generations=30, neuron_batch=2)
CORE = slice(3, 7)  # the informative core of every hand-made layer-1 motif


def _motif(neuron: int) -> NeuronResult:
    """One subset: a 4 bp core (2 bits per position) in a flat 10 bp window."""
    rng = np.random.default_rng(neuron)
    ppm = np.full((1, WIDTH, 4), 0.25)
    ppm[0, CORE] = np.eye(4)[rng.integers(0, 4, 4)]
    consensus = ppm.argmax(2).astype(np.uint8)
    return NeuronResult(ppm, np.array([500]), np.array([1.0]), np.array([1.0]), consensus,
                        1, neuron, 0, 1)


@pytest.fixture(scope="module")
def below():
    return LayerResult(1, {j: _motif(j) for j in range(4)}, 1, {})


@pytest.fixture(scope="module")
def populations(below):
    """Initial populations of layer-2 neurons 0 and 1 under both rules: rule -> (bases, placed).
    Neuron 0 reads layer-1 neuron 0 at kernel position 1 only; neuron 1 reads neuron 1 at
    position 0 and neuron 2 at position 2, windows at offsets {0, 1} and {4, 5} of 15 bp."""
    net = toy_network()
    settings = ga.ga_config(net, 2, CONFIG)
    keys = [neuron_key(0, 2, n) for n in (0, 1)]
    out = {}
    for rule in ("window", "authors"):
        seeding = seeding_for(net, 2, [0, 1], below, rule)
        pop, placed = ga.first_states(settings, keys, seeding)
        out[rule] = np.asarray(pop.bases), np.asarray(placed)
        np.testing.assert_array_equal(
            ga.motifs_placed(net, 2, [0, 1], keys, CONFIG, seeding), out[rule][1])
    return out


def test_whole_window_rule_places_one_motif_per_sequence(populations, below):
    bases, placed = populations["window"]
    assert placed.max() == 1 and placed.mean() > 0.99
    own = [below.neurons[j].consensus[0] for j in (1, 2)]
    for row in bases[1]:  # neuron 1: one of its two motifs, whole, at an allowed offset
        assert any((row[o:o + WIDTH] == m).all() for m in own for o in (0, 1, 4, 5))


def test_authors_rule_places_two_motifs_on_a_kernel3_pool2_net(populations, below):
    bases, placed = populations["authors"]
    assert placed[0].max() == 1                       # neuron 0 has one (position, neuron) pair
    assert placed[1].max() == 2 and (placed[1] == 2).mean() > 0.5
    first, second = (below.neurons[j].consensus[0][CORE] for j in (1, 2))
    for row in bases[1][placed[1] == 2]:  # both cores written whole, side by side
        assert any((row[o + 3:o + 7] == first).all() for o in (0, 1))
        assert any((row[o + 3:o + 7] == second).all() for o in (4, 5))


def test_authors_contribution_is_flattened_into_equal_mass_bins():
    np.testing.assert_allclose(equal_mass(np.array([[4.0, 2.0, 1.0, 0.0]]), bins=4),
                               [[0.5, 0.25, 0.25, 0.0]])  # empty bin (2, 3] -> the bin above
    np.testing.assert_allclose(equal_mass(np.array([[4.0, 3.5, 1.0], [0, 0, 0]]), bins=4),
                               [[0.4, 0.35, 0.25], [0, 0, 0]])  # shared in proportion to c
    c = seeding_for(toy_network(), 2, [1], LayerResult(1, {j: _motif(j) for j in range(4)},
                                                       1, {}), "authors").contribution
    assert c.sum() == pytest.approx(1.0)


def test_motif_cores_need_four_informative_positions():
    ppm = np.full((2, WIDTH, 4), 0.25)
    ppm[0, 2:6] = np.eye(4)[[0, 1, 2, 3]]
    ppm[1, 2:5] = np.eye(4)[[0, 1, 2]]
    np.testing.assert_array_equal(motif_cores(ppm), [[2, 6], [0, 0]])


def test_initial_population_joins_the_samples_only_with_the_option():
    """Layer-2 neuron 0 seeded with the planted ELK1 consensus of layer-1 neuron 0: most
    initial sequences activate it; with the option all of those are samples."""
    net = toy_network()
    cons = np.zeros(WIDTH, np.uint8)
    elk1 = planted_consensus(PLANTED[0])[:WIDTH]
    cons[:len(elk1)] = ["ACGT".index(b) for b in elk1]
    planted = NeuronResult(np.eye(4)[cons][None], np.array([500]), np.array([1.0]),
                           np.array([1.0]), cons[None], 1, 0, 0, 1)
    seeding = seeding_for(net, 2, [0], LayerResult(1, {0: planted}, 1, {}))
    keys = [neuron_key(0, 2, 0)]
    # one generation of the continuous rule, which moves most sequences away from the start
    config = dataclasses.replace(CONFIG, max_generations=1, mutation="continuous")
    start = np.asarray(ga.first_states(ga.ga_config(net, 2, config), keys,
                                                   seeding)[0].bases[0])
    f0 = np.asarray(net.neuron_values(jnp.eye(4)[start], 2, 0))
    wanted = {row.tobytes() for row in start[f0 > 0].astype(np.uint8)}
    assert len(wanted) > 100
    kept = {}
    for keep in (False, True):
        [(bases, _)], _ = run_ga(
            net, 2, [0], keys, dataclasses.replace(config, keep_initial_population=keep), seeding)
        kept[keep] = {row.tobytes() for row in bases}
    assert kept[True] == kept[False] | wanted and not wanted <= kept[False]


def test_seeding_rule_is_validated():
    with pytest.raises(NmjaxError, match="unknown seeding 'core'; choose from window, authors"):
        DecodeConfig(seeding="core")
