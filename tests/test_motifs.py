"""Activation-weighted PPMs, smoothing and IC segmentation on hand-computed cases."""
import dataclasses

import numpy as np

from nmjax.motifs import (SEGMENT_RULES, consensus, consensus_string, information_content, laplace,
                          segment_ppm, unsmooth, value_bins, weighted_ppm)

E = np.eye(4)


def test_weighted_ppm_equals_hand_computation_two_bins():
    bases = np.array([[0, 1], [0, 2], [3, 2]], np.uint8)   # AC, AG, TG
    f = np.array([1.0, 2.0, 4.0])
    # A = 4, bins (0,2] and (2,4]: bin 0 = {AC, AG} with V = 1.5, bin 1 = {TG} with V = 4
    ppm0 = (E[[0, 1]] + E[[0, 2]]) / 2
    ppm1 = E[[3, 2]]
    want = (1.5 * ppm0 + 4.0 * ppm1) / 5.5
    np.testing.assert_allclose(weighted_ppm(bases, f, bins=2), want, atol=1e-12)


def test_weighted_ppm_empty_bin_reuses_nearest_lower_bin_at_bin_centre():
    bases = np.array([[0, 1], [0, 2], [3, 2]], np.uint8)
    f = np.array([1.0, 2.0, 4.0])
    # bins of width 1: {AC} V=1, {AG} V=2, empty (nearest: bins 1 and 3, lower wins) V=2.5, {TG} V=4
    parts = [(1.0, E[[0, 1]]), (2.0, E[[0, 2]]), (2.5, E[[0, 2]]), (4.0, E[[3, 2]])]
    want = sum(v * p for v, p in parts) / sum(v for v, _ in parts)
    np.testing.assert_allclose(weighted_ppm(bases, f, bins=4), want, atol=1e-12)


def test_weighted_ppm_empty_bin_reuses_the_bin_above_under_the_authors_rule():
    bases = np.array([[0, 1], [0, 2], [3, 2], [1, 1]], np.uint8)
    f = np.array([1.0, 2.0, 6.0, 0.5])
    # bins of width 1 over (0, 6]: {AC, CC} V=0.75, {AG} V=2, three empty bins, {TG} V=6;
    # 'above' gives the empty bins 2-4 TG's PPM, 'nearest' gives bins 2-3 AG's and bin 4 TG's
    centres = (2.5, 3.5, 4.5)
    filled = [(0.75, (E[[0, 1]] + E[[1, 1]]) / 2), (2.0, E[[0, 2]]), (6.0, E[[3, 2]])]
    for rule, reused in (("above", [E[[3, 2]]] * 3), ("nearest", [E[[0, 2]]] * 2 + [E[[3, 2]]])):
        parts = filled + list(zip(centres, reused))
        want = sum(v * p for v, p in parts) / sum(v for v, _ in parts)
        np.testing.assert_allclose(weighted_ppm(bases, f, bins=6, empty=rule), want, atol=1e-12)


def test_max_lands_in_top_bin_for_float32_values():
    rng = np.random.default_rng(0)
    for _ in range(200):
        f = rng.uniform(0, 10, 50).astype(np.float32)
        bins = value_bins(f, f.max(), 20)
        assert bins[np.argmax(f)] == 19
        assert bins.min() >= 0


def test_laplace_and_information_content():
    ppm = np.array([[1.0, 0, 0, 0], [0.25, 0.25, 0.25, 0.25]])
    np.testing.assert_allclose(laplace(ppm, 20, 80), [[0.4, 0.2, 0.2, 0.2], [0.25] * 4])
    np.testing.assert_allclose(information_content(ppm), [2.0, 0.0], atol=1e-12)


def test_paper_rule_extends_merges_and_drops_short_regions():
    ppm = np.full((40, 4), 0.25)
    ppm[[10, 11, 12, 15]] = [0.97, 0.01, 0.01, 0.01]   # IC > 1: 10-12 and 15 -> one region
    ppm[30] = [0.01, 0.97, 0.01, 0.01]                 # alone: 7 bp after extension, dropped
    paper = SEGMENT_RULES["paper"]
    assert segment_ppm(ppm, 100_000, paper) == [(7, 19)]
    assert segment_ppm(ppm, 100_000, dataclasses.replace(paper, min_length=7)) == [(7, 19), (27, 34)]
    # the M = 80 smoothing of a small subset takes a lone base below 1 bit
    assert segment_ppm(ppm, 20, paper) == []


def test_unsmooth_inverts_laplace():
    ppm = np.random.default_rng(0).dirichlet(np.ones(4), size=12)
    np.testing.assert_allclose(unsmooth(laplace(ppm, 300, 80.0), 300, 80.0), ppm, atol=1e-12)


def test_consensus():
    ppm = np.array([[0.1, 0.7, 0.1, 0.1], [0.0, 0.0, 0.2, 0.8]])
    assert consensus_string(consensus(ppm)) == "CT"
