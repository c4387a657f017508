"""Simulated genomics data with known answers: one-hot DNA with planted motif grammars.

Each sequence is background DNA (uniform or a given GC content) into which motif instances
are written, each instance a fresh draw from a real position frequency matrix (JASPAR CORE
vertebrates through pyJASPAR, offline, or any MEME file). Every task declares a rule:

- ``single``: motif A anywhere, either strand;
- ``dimer``: A then B (A may equal B) with a gap between them in ``gap`` = [min, max]
  bases, the pair written as one unit on either strand. ``gap`` min == max is a hard dimer,
  a range is a soft dimer. Decoys write the same pair with a gap drawn from ``decoy_gap``
  outside ``gap``: they are labelled negative;
- ``cooccurrence``: A and B each anywhere, either strand; a decoy writes only one of them.

Per sequence and task: with probability ``positive_rate`` an event that satisfies the rule,
else with probability ``decoy_rate`` a decoy event (not for ``single``). A task's label is 1
iff one of its events in that sequence satisfies the rule. Each motif should belong to one
task only, so that events of other tasks cannot satisfy a rule by accident (checked).
Every event is returned (`PlantedEvent`), so tests and benchmarks can check where and how.

Determinism: sequence i of a split draws from its own generator seeded with
(seed, split, i), so a split is the same whatever batch size it is streamed in.

JASPAR: Rauluseviciute et al., Nucleic Acids Res. 2024; pyJASPAR: Khan A., 2021,
https://github.com/asntech/pyjaspar.
"""
from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from pathlib import Path
from typing import Iterator

import numpy as np

from .arrays import one_hot
from .errors import NmjaxError
from .fileio import write_text
from .meme import ALPHABET, Motif
from .motifdb import DEFAULT_RELEASE, jaspar_motif, load_motif_db
from .sequences import reverse_complement, write_fasta

RULES = ("single", "dimer", "cooccurrence")
SPLITS = ("train", "valid", "test")


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """One prediction target and the motif grammar that makes it positive."""

    name: str
    rule: str
    motifs: tuple[str, ...]
    gap: tuple[int, int] = (0, 0)
    decoy_gap: tuple[int, int] = (0, 0)
    positive_rate: float = 0.3
    decoy_rate: float = 0.3

    @property
    def is_hard(self) -> bool:
        return self.rule == "dimer" and self.gap[0] == self.gap[1]

    def describe(self) -> str:
        """The grammar in the paper's notation: A, A-6N-B, A-[10-20N]-A, A+B."""
        if self.rule == "single":
            return self.motifs[0]
        if self.rule == "cooccurrence":
            return f"{self.motifs[0]} + {self.motifs[1]}"
        gap = f"{self.gap[0]}N" if self.is_hard else f"[{self.gap[0]}-{self.gap[1]}N]"
        return f"{self.motifs[0]}-{gap}-{self.motifs[1]}"


@dataclasses.dataclass(frozen=True)
class SimulationConfig:
    """A simulated dataset: tasks, sequence length, background, split sizes, seed, motifs."""

    tasks: tuple[TaskSpec, ...]
    length: int = 200
    gc: float = 0.5
    n_train: int = 20000
    n_valid: int = 2000
    n_test: int = 4000
    seed: int = 0
    motif_file: str | None = None
    jaspar_release: str = DEFAULT_RELEASE

    @property
    def task_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tasks)

    def split_size(self, split: str) -> int:
        _check_split(split)
        return {"train": self.n_train, "valid": self.n_valid, "test": self.n_test}[split]

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict, where: str = "simulation config") -> "SimulationConfig":
        """Build and validate a config from parsed JSON/TOML; errors name `where` and the field."""
        if not isinstance(d, dict) or "tasks" not in d:
            raise NmjaxError(f"{where}: needs a 'tasks' list")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise NmjaxError(f"{where}: unknown field(s) {unknown}; known: {sorted(known)}")
        task_fields = {f.name for f in dataclasses.fields(TaskSpec)}
        tasks = []
        for i, t in enumerate(d["tasks"]):
            if not isinstance(t, dict) or set(t) - task_fields:
                raise NmjaxError(f"{where}: task {i + 1}: expected a table with fields from "
                                 f"{sorted(task_fields)}, got {t!r}")
            try:
                tasks.append(TaskSpec(**{**t, "motifs": tuple(t.get("motifs", ())),
                                         "gap": tuple(t.get("gap", (0, 0))),
                                         "decoy_gap": tuple(t.get("decoy_gap", (0, 0)))}))
            except TypeError as e:
                raise NmjaxError(f"{where}: task {i + 1}: {e}") from None
        config = cls(**{**d, "tasks": tuple(tasks)})
        config.validate(where)
        return config

    def validate(self, where: str = "simulation config") -> None:
        if not self.tasks:
            raise NmjaxError(f"{where}: no tasks declared")
        if self.length < 1 or not 0.0 <= self.gc <= 1.0:
            raise NmjaxError(f"{where}: length must be >= 1 and gc in [0, 1] "
                             f"(got length={self.length}, gc={self.gc})")
        for split in SPLITS:
            if self.split_size(split) < 0:
                raise NmjaxError(f"{where}: n_{split} must be >= 0")
        names = self.task_names
        if len(set(names)) != len(names):
            raise NmjaxError(f"{where}: task names must be unique, got {list(names)}")
        owner: dict[str, str] = {}
        for t in self.tasks:
            _validate_task(t, where)
            for m in set(t.motifs):
                if m in owner:
                    raise NmjaxError(f"{where}: motif {m!r} is used by tasks {owner[m]!r} and "
                                     f"{t.name!r}; give each task its own motifs so labels "
                                     "stay exact")
                owner[m] = t.name


def _validate_task(t: TaskSpec, where: str) -> None:
    at = f"{where}: task {t.name!r}"
    if t.rule not in RULES:
        raise NmjaxError(f"{at}: unknown rule {t.rule!r}; use one of {', '.join(RULES)}")
    want = 1 if t.rule == "single" else 2
    if len(t.motifs) != want:
        raise NmjaxError(f"{at}: rule {t.rule!r} needs {want} motif(s), got {list(t.motifs)}")
    decoy_rate = 0.0 if t.rule == "single" else t.decoy_rate  # a single motif has no decoy
    if not (0 <= t.positive_rate <= 1 and 0 <= decoy_rate <= 1
            and t.positive_rate + decoy_rate <= 1):
        raise NmjaxError(f"{at}: positive_rate and decoy_rate must be in [0, 1] with a sum <= 1")
    if t.rule == "dimer":
        lo, hi = t.gap
        if not 0 <= lo <= hi:
            raise NmjaxError(f"{at}: gap must be [min, max] with 0 <= min <= max, got {list(t.gap)}")
        if t.decoy_rate > 0 and not _decoy_gaps(t):
            raise NmjaxError(f"{at}: decoy_gap {list(t.decoy_gap)} has no gap outside "
                             f"{list(t.gap)}; widen it or set decoy_rate = 0")


def _decoy_gaps(t: TaskSpec) -> list[int]:
    return [g for g in range(t.decoy_gap[0], t.decoy_gap[1] + 1) if not t.gap[0] <= g <= t.gap[1]]


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise NmjaxError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")


def load_config(path: str | os.PathLike) -> SimulationConfig:
    """Read a simulation config from JSON or TOML; a relative motif_file is taken from its folder."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise NmjaxError(f"cannot read simulation config {path}: {e.strerror}") from None
    try:
        d = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as e:
        raise NmjaxError(f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'JSON'}: {e}"
                         ) from None
    if isinstance(d, dict) and d.get("motif_file") and not Path(d["motif_file"]).is_absolute():
        d = {**d, "motif_file": str(path.parent / d["motif_file"])}
    return SimulationConfig.from_dict(d, str(path))


def resolve_motifs(config: SimulationConfig) -> dict[str, Motif]:
    """Every motif name the tasks use -> its PPM (from the MEME file, else from JASPAR)."""
    names = sorted({m for t in config.tasks for m in t.motifs})
    if config.motif_file:
        db = load_motif_db(config.motif_file)
        by_name = {m.name: m for m in db} | {m.alt_name: m for m in db if m.alt_name}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise NmjaxError(f"{config.motif_file}: no motif named {missing}; it has "
                             f"{sorted(by_name)[:20]}")
        return {n: by_name[n] for n in names}
    return {n: jaspar_motif(n, config.jaspar_release) for n in names}


# ---------------------------------------------------------------------------- generation
@dataclasses.dataclass(frozen=True)
class PlantedSite:
    """One motif instance: first base (0-based), strand, and its bases as read on that strand."""

    motif: str
    start: int
    strand: str
    bases: str

    @property
    def end(self) -> int:
        return self.start + len(self.bases)


@dataclasses.dataclass(frozen=True)
class PlantedEvent:
    """What one task wrote into one sequence: sites in grammar order (A, then B)."""

    task: str
    positive: bool
    sites: tuple[PlantedSite, ...]
    gap: int | None = None


@dataclasses.dataclass(frozen=True)
class SimulatedBatch:
    """One-hot sequences (n, length, 4) uint8, labels (n, tasks) uint8, events per sequence."""

    onehot: np.ndarray
    labels: np.ndarray
    events: tuple[tuple[PlantedEvent, ...], ...]


def _background(rng: np.random.Generator, length: int, gc: float) -> np.ndarray:
    p = np.array([(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2])
    return rng.choice(4, size=length, p=p)


def _sample_instance(rng: np.random.Generator, ppm: np.ndarray) -> np.ndarray:
    """Base indices drawn position by position from a PPM (forward strand)."""
    cum = np.cumsum(ppm, axis=1)
    return np.minimum((rng.random(len(ppm))[:, None] > cum).sum(1), 3)


def _free_start(rng: np.random.Generator, occupied: np.ndarray, span: int) -> int | None:
    """A uniformly chosen start where `span` bases are all free, or None."""
    if span > len(occupied):
        return None
    window_used = np.convolve(occupied.astype(np.int32), np.ones(span, np.int32), "valid")
    starts = np.flatnonzero(window_used == 0)
    return None if len(starts) == 0 else int(rng.choice(starts))


def _unit(parts: list[tuple[str, np.ndarray]], gaps: list[int], rng, gc: float):
    """Concatenate motif instances with background gaps: (bases, [(name, offset, length)])."""
    pieces, layout, offset = [], [], 0
    for i, (name, inst) in enumerate(parts):
        if i:
            pieces.append(_background(rng, gaps[i - 1], gc))
            offset += gaps[i - 1]
        layout.append((name, offset, len(inst)))
        pieces.append(inst)
        offset += len(inst)
    return np.concatenate(pieces), layout


def _write_unit(seq, occupied, rng, unit, layout) -> tuple[PlantedSite, ...] | None:
    """Write a unit on a random strand at a free place; return its sites (None if no room)."""
    start = _free_start(rng, occupied, len(unit))
    if start is None:
        return None
    strand = "+" if rng.random() < 0.5 else "-"
    written = unit if strand == "+" else reverse_complement(unit)
    seq[start:start + len(unit)] = written
    occupied[start:start + len(unit)] = True
    sites = []
    for name, offset, n in layout:
        fwd = unit[offset:offset + n]
        pos = start + offset if strand == "+" else start + len(unit) - offset - n
        sites.append(PlantedSite(name, pos, strand, "".join(ALPHABET[b] for b in fwd)))
    return tuple(sites)


def _plan_event(rng, task: TaskSpec) -> tuple[bool, list[list[str]], list[int | None]] | None:
    """Decide whether `task` writes a positive event, a decoy or nothing; return the units."""
    u = rng.random()
    if u < task.positive_rate:
        positive = True
    elif u < task.positive_rate + task.decoy_rate and task.rule != "single":
        positive = False
    else:
        return None
    a = task.motifs[0]
    if task.rule == "single":
        return True, [[a]], [None]
    b = task.motifs[1]
    if task.rule == "cooccurrence":
        if positive:
            return True, [[a], [b]], [None, None]
        return False, [[task.motifs[int(rng.integers(2))]]], [None]
    gaps = list(range(task.gap[0], task.gap[1] + 1)) if positive else _decoy_gaps(task)
    return positive, [[a, b]], [int(rng.choice(gaps))]


def simulate_sequence(config: SimulationConfig, motifs: dict[str, Motif], split: str,
                      index: int) -> tuple[np.ndarray, np.ndarray, tuple[PlantedEvent, ...]]:
    """Sequence `index` of `split`: base indices (length,), labels (tasks,), its events."""
    rng = np.random.default_rng([config.seed, SPLITS.index(split), index])
    seq = _background(rng, config.length, config.gc)
    occupied = np.zeros(config.length, bool)
    plans = [(t, _plan_event(rng, t)) for t in config.tasks]
    # Largest units first, so that long dimers still find room.
    order = sorted(range(len(plans)), key=lambda i: -_plan_span(plans[i], motifs))
    events: dict[int, PlantedEvent] = {}
    for i in order:
        task, plan = plans[i]
        if plan is None:
            continue
        positive, units, gaps = plan
        sites: list[PlantedSite] = []
        for names, gap in zip(units, gaps):
            parts = [(n, _sample_instance(rng, motifs[n].ppm)) for n in names]
            unit, layout = _unit(parts, [gap] if gap is not None else [], rng, config.gc)
            placed = _write_unit(seq, occupied, rng, unit, layout)
            if placed is None:  # no room left: what was written stays, and is not positive
                positive = False
                break
            sites.extend(placed)
        if sites:
            events[i] = PlantedEvent(task.name, positive, tuple(sites), gaps[0])
    ordered = tuple(events[i] for i in sorted(events))
    labels = np.array([any(e.positive for e in ordered if e.task == t.name)
                       for t in config.tasks], np.uint8)
    return seq, labels, ordered


def _plan_span(item, motifs) -> int:
    task, plan = item
    if plan is None:
        return 0
    _, units, gaps = plan
    return max(sum(len(motifs[n].ppm) for n in names) + (gap or 0)
               for names, gap in zip(units, gaps))


def stream(config: SimulationConfig, split: str, batch_size: int = 1024,
           motifs: dict[str, Motif] | None = None) -> Iterator[SimulatedBatch]:
    """Batches of a split in order; memory stays one batch whatever the split size."""
    _check_split(split)
    if batch_size < 1:
        raise NmjaxError(f"batch_size must be >= 1, got {batch_size}")
    motifs = motifs if motifs is not None else resolve_motifs(config)
    n = config.split_size(split)
    for lo in range(0, n, batch_size):
        rows = [simulate_sequence(config, motifs, split, i) for i in range(lo, min(n, lo + batch_size))]
        yield SimulatedBatch(one_hot(np.stack([r[0] for r in rows]), np.uint8),
                             np.stack([r[1] for r in rows]), tuple(r[2] for r in rows))


def simulate(config: SimulationConfig, split: str,
             motifs: dict[str, Motif] | None = None) -> SimulatedBatch:
    """A whole split in memory (fine up to a few hundred thousand sequences of 200 bp)."""
    batches = list(stream(config, split, 4096, motifs))
    if not batches:
        return SimulatedBatch(np.zeros((0, config.length, 4), np.uint8),
                              np.zeros((0, len(config.tasks)), np.uint8), ())
    return SimulatedBatch(np.concatenate([b.onehot for b in batches]),
                          np.concatenate([b.labels for b in batches]),
                          sum((b.events for b in batches), ()))


def planted_motifs(config: SimulationConfig) -> list[Motif]:
    """The motifs the tasks plant, named as the config names them (the other of matrix ID and
    TF name as alt name): the ground-truth MEME file of a simulated dataset."""
    return [Motif(name, m.ppm, m.nsites, m.alt_name if m.name == name else m.name)
            for name, m in resolve_motifs(config).items()]


def write_simulated_fasta(batch: SimulatedBatch, path: str | os.PathLike) -> Path:
    """The sequences as FASTA records seq0, seq1, ... (gzipped if `path` ends .gz) and every
    planted site as BED6 beside it (`<stem>.sites.bed`: record, start, end, motif, task,
    strand; the task name ends '(decoy)' for a decoy event): input and ground truth of
    `nmjax scan`. Returns the BED path."""
    path = Path(path)
    write_fasta(path, {f"seq{i}": codes for i, codes in
                       enumerate(batch.onehot.argmax(-1).astype(np.uint8))})
    rows = [f"seq{i}\t{s.start}\t{s.end}\t{s.motif}\t{e.task}{'' if e.positive else '(decoy)'}"
            f"\t{s.strand}\n" for i, events in enumerate(batch.events) for e in events
            for s in e.sites]
    stem = path.name.removesuffix(".gz").rsplit(".", 1)[0]
    bed = path.with_name(f"{stem}.sites.bed")
    write_text(bed, "".join(rows))
    return bed
