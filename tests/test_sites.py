"""Motif sites with FIMO's statistics (`nmjax.sites`)."""
from __future__ import annotations

import numpy as np

from nmjax.motifdb import jaspar_motif
from nmjax.sites import binned_log_odds, find_sites, score_p_values
from nmjax.sequences import reverse_complement


def test_p_values_are_exact_for_the_binned_scores():
    ppm = jaspar_motif("MA0466.4").ppm          # CEBPB, 10 columns: 4**10 windows enumerable
    table = binned_log_odds(ppm)
    low, survival = score_p_values(table)
    words = np.array(np.meshgrid(*[range(4)] * len(ppm), indexing="ij")).reshape(len(ppm), -1).T
    scores = table[np.arange(len(ppm)), words].sum(1)
    for s in (low, int(np.median(scores)), int(np.percentile(scores, 99.9)), scores.max()):
        assert survival[s - low] == np.mean(scores >= s)


def test_false_hits_on_random_sequence_match_the_threshold():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 4, (400, 1000)).astype(np.uint8)
    ctcf = jaspar_motif("MA0139.2").ppm
    for p in (1e-3, 1e-4):
        found = len(find_sites(ctcf, codes, p).row)
        expected = 2 * p * 400 * (1000 - len(ctcf) + 1)
        assert abs(found - expected) < 4 * np.sqrt(expected) + 2, (p, found, expected)


def test_planted_sites_are_found_on_their_strand():
    rng = np.random.default_rng(1)
    ctcf = jaspar_motif("MA0139.2").ppm
    consensus = ctcf.argmax(1).astype(np.uint8)
    codes = rng.integers(0, 4, (3, 200)).astype(np.uint8)
    codes[0, 50:50 + len(ctcf)] = consensus
    codes[1, 120:120 + len(ctcf)] = reverse_complement(consensus)
    codes[2, 10:30] = 4                                           # N scores 0
    sites = find_sites(ctcf, codes)
    hits = {(int(r), int(s), int(d)) for r, s, d in zip(sites.row, sites.start, sites.strand)}
    assert (0, 50, 1) in hits and (1, 120, -1) in hits
    assert not any(r == 2 and 10 - len(ctcf) < s < 30 for r, s, _ in hits)
    assert (sites.p_value <= 1e-4).all()
