"""The decoder's settings and the choice lists the command line offers: the bottom of the house
(it imports nothing of nmjax but its errors), so every stage can read them."""
from __future__ import annotations

import dataclasses

from .errors import NmjaxError

VERSION = "0.1.0"

METHODS = ("neuronmotif", "kelley", "alipanahi", "saliency")
MUTATION_RULES = ("reference", "paper", "continuous")
PRECISIONS = ("fp32", "bf16")
PRECISION_CHOICES = ("auto",) + PRECISIONS
SEEDING_RULES = ("window", "authors")
RATIO_RULES = ("pooled", "per-subset")
EMPTY_BIN_RULES = ("nearest", "above")
SEGMENT_RULES = ("paper", "reference")   # the rules themselves: `nmjax.motifs.SEGMENT_RULES`
DEFAULT_SEGMENT_RULE = "reference"


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
    """The samples of a neuron: the GA (or the enumeration of short receptive fields), its
    seeding by the layer below, the sample cap.

    population: GA population (None = the paper's clip(floor(N/20)*1000, 2000, 5000)).
    precision: the GA's forward and gradient passes in 'fp32', 'bf16' or 'auto' (bf16 where a
        conv below the layer is wide: `nmjax.scoring.layer_precision`); the f of every kept
        sample is re-scored in float32 (`nmjax.sampling.rescore`), so outputs carry float32
        values.
    patience: the GA stops after this many generations without a better mean f; the paper says
        10 (default), the authors' code stops after 11.
    seeding: 'window' (a lower-layer motif is written only where its whole window is free, so
        kernel-3 pool-2 nets get one per sequence) or 'authors' (only the IC > 1 core of a
        placed motif is protected, every subset of the drawn neuron is written, c is flattened
        into 20 equal-mass bins): `nmjax.seeding`.
    keep_initial_population: the (seeded) initial population joins the sample set (authors).
    cap_enumerated: cap enumerated samples (receptive field < enumerate_below) at max_samples
        like GA ones; False keeps every window with f > 0 (authors).
    """

    mutation: str = "reference"
    precision: str = "auto"
    population: int | None = None
    elite_fraction: float = 0.1
    max_generations: int = 200
    patience: int = 10
    max_samples: int = 100_000
    sample_bins: int = 20
    per_bin: int = 5_000
    cap_every: int = 5
    enumerate_below: int = 11
    seed_from_previous: bool = True
    seeding: str = "window"
    keep_initial_population: bool = False
    cap_enumerated: bool = True


@dataclasses.dataclass(frozen=True)
class DecouplingConfig:
    """The split of a neuron's samples into shift-consistent subsets: weighted K-means below
    each max-pool, and the rounds rule.

    rounds: decoupling rounds, an int or 'auto' (the t-test rule, up to max_rounds).
    rounds_ratio: the ratio the rounds rule tests per neuron: 'pooled' max conact / max act
        over its subsets, or 'per-subset' the max over subsets of conact / act (authors;
        never lower, so it never asks for more rounds). run.json records each round's test.
    ratio_tie_margin: a rounds decision that would change if every ratio moved by up to this
        much is a tie, decided as passing (the fewer rounds), so float rounding of ratios near
        the threshold cannot flip it (`nmjax.decoupling.rounds_test`). 1e-5 is 100 times the
        float32 rounding of a ratio and moves t by under 0.01 for 30 neurons of sd 0.05.
    """

    rounds: int | str = "auto"
    max_rounds: int = 3
    ratio_threshold: float = 0.95
    ratio_p_value: float = 0.1
    rounds_ratio: str = "pooled"
    ratio_tie_margin: float = 1e-5
    min_split: int = 50
    kmeans_restarts: int = 4
    kmeans_tol: float = 1e-4
    kmeans_max_iter: int = 300


@dataclasses.dataclass(frozen=True)
class MotifConfig:
    """A subset's PPM and its segments.

    empty_bin: an empty PPM value bin reuses the 'nearest' non-empty bin (the lower on a tie)
        or the one 'above' it (authors): `nmjax.motifs.weighted_ppm`.
    segment_rule: how motifs.meme cuts the PPMs into segments and the grammar's dictionary
        reads them (`nmjax.motifs.SEGMENT_RULES`: 'reference', the authors' code, or 'paper').
    """

    empty_bin: str = "nearest"
    ppm_bins: int = 20
    laplace_pseudocount: float = 80.0
    segment_rule: str = DEFAULT_SEGMENT_RULE


@dataclasses.dataclass(frozen=True)
class DecodeConfig(MotifConfig, DecouplingConfig, SamplingConfig):
    """Every size, rate and rule of the decoder; defaults are the paper's values. Its fields are
    those of its stages' parts (`SamplingConfig`, `DecouplingConfig`, `MotifConfig`), and:

    method: 'neuronmotif', or a baseline the paper compares with.
    neuron_batch: neurons per call of the layer's compiled GA program (rounded up to a
        multiple of the device count; see nmjax.devices); a slot whose neuron stops takes
        the layer's next neuron (nmjax.slots). 1 by default: on a 2-core CPU a batch of 4 cost
        1.7x per neuron (Basset layers 2-3) and 1.8x (example layer 3), measured before slots
        were refilled, as the cores are already busy with one neuron; raise it on a GPU.
    memory_budget: bytes of temporary GA memory per device (None = no limit); lowers the
        neuron batch of a layer whose estimated memory exceeds it (at least 1 neuron).

    Where the authors' code reads the method differently, an option holds both readings
    (`AUTHORS_READING` sets all of theirs; bench/fidelity.py measures each): seeding,
    keep_initial_population, cap_enumerated, patience, rounds_ratio, empty_bin.
    """

    method: str = "neuronmotif"
    neuron_batch: int = 1
    memory_budget: int | None = None

    def __post_init__(self):
        for name, choices in (("method", METHODS), ("mutation", MUTATION_RULES),
                              ("precision", PRECISION_CHOICES), ("seeding", SEEDING_RULES),
                              ("rounds_ratio", RATIO_RULES), ("empty_bin", EMPTY_BIN_RULES)):
            if getattr(self, name) not in choices:
                raise NmjaxError(f"unknown {name} {getattr(self, name)!r}; choose from "
                                 f"{', '.join(choices)}")
        if not (self.rounds == "auto" or (isinstance(self.rounds, int) and self.rounds >= 1)):
            raise NmjaxError(f"rounds must be 'auto' or a positive integer, not {self.rounds!r}")
        for name in ("neuron_batch", "patience", "max_rounds"):
            if getattr(self, name) < 1:
                raise NmjaxError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.memory_budget is not None and self.memory_budget < 1:
            raise NmjaxError(f"memory_budget must be a positive number of bytes, not "
                             f"{self.memory_budget}")
        if self.segment_rule not in SEGMENT_RULES:
            raise NmjaxError(f"unknown segmentation rule {self.segment_rule!r}; choose from "
                             f"{', '.join(SEGMENT_RULES)}")
        if self.population is not None and self.population < 10:
            raise NmjaxError(f"population {self.population} is too small (at least 10)")
        if not 0 <= self.ratio_tie_margin < 1:
            raise NmjaxError(f"ratio_tie_margin must be in [0, 1), not {self.ratio_tie_margin}")
        for name in ("keep_initial_population", "cap_enumerated", "seed_from_previous"):
            if not isinstance(getattr(self, name), bool):
                raise NmjaxError(f"{name} must be True or False, not {getattr(self, name)!r}")


# the authors' reading of every rule where it differs from the paper's (DecodeConfig docstring)
AUTHORS_READING = {"seeding": "authors", "keep_initial_population": True,
                   "cap_enumerated": False, "patience": 11, "rounds_ratio": "per-subset",
                   "empty_bin": "above"}


# settings that may change between runs into one directory: the rounds choice (per-neuron
# results are stored per number of rounds) and the batching (results do not depend on it)
FREE_SETTINGS = frozenset({"rounds", "max_rounds", "ratio_threshold", "ratio_p_value",
                           "rounds_ratio", "ratio_tie_margin", "neuron_batch", "memory_budget"})
