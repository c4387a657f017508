"""Spreading a decode over machines (the devices of one machine: `nmjax.devices`).

`Shard(i, n)` owns the neurons with neuron % n == i of every requested layer (a
balanced split: shard sizes differ by at most one neuron per layer). `decode_shard` writes
only per-neuron files (samples/, parts/ of the first decoupling round) and a shard record
`layer{L}/shards/shard{i}of{n}.json` into the shared output directory; `merge` checks that
every neuron is there, applies the layer-level rounds rule (decoupling more rounds for all
neurons where it asks) and writes the layer files and run.json, exactly as one run would.
Layer l is seeded by layer l-1, so a cluster runs one layer at a time: all shards of layer l,
then `nmjax merge`, then layer l+1 (docs/cluster.md).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from pathlib import Path

import jax
import numpy as np

from .config import DecodeConfig
from .decoder import (clipped_neurons, finish_layer, first_round_config, layer_by_layer,
                      neuron_key, requested_layers, sample_layer)
from .devices import device_count
from .errors import NmjaxError
from .fileio import write_text
from .runfolder import (StoredSamples, check_same_run, layer_dir, layers_with, load_layer,
                        read_shard_records, sample_path, settings_diff, shard_record_path)
from .summarise import summarise_rounds


@dataclasses.dataclass(frozen=True)
class Shard:
    """Shard `index` of `count`: the neurons n with n % count == index of every layer."""

    index: int
    count: int

    def __post_init__(self):
        if not 0 <= self.index < self.count:
            raise NmjaxError(f"bad shard {self.index}/{self.count}: need 0 <= i < n in i/n")

    @classmethod
    def parse(cls, text: str) -> "Shard":
        """'2/8' -> Shard(2, 8)."""
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not m:
            raise NmjaxError(f"bad --shard {text!r}: use i/n, e.g. 0/8 (shards 0..n-1 of n)")
        return cls(int(m.group(1)), int(m.group(2)))

    def select(self, neurons: list[int]) -> list[int]:
        return [n for n in neurons if n % self.count == self.index]

    @property
    def name(self) -> str:
        return f"shard{self.index}of{self.count}"


def model_fingerprint(net) -> str:
    """sha256 of the architecture and parameters: merge refuses shards of another model."""
    h = hashlib.sha256(json.dumps(net.config.to_json(), sort_keys=True).encode())
    for leaf in jax.tree_util.tree_leaves(net.params):
        h.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
    return h.hexdigest()[:16]


def recorded_model(out: str | os.PathLike) -> str | None:
    """The model path the shards of `out` recorded (None: the bundled example or no record)."""
    records = read_shard_records(out)
    recorded = records[0]["model"] if records else ""
    return None if recorded in ("", "bundled example") else recorded


def _check_records(out: Path, layer: int, records: list[dict], seed: int, config,
                   fingerprint: str) -> None:
    for r in records:
        diff = settings_diff(r["parameters"], r["seed"], config, seed)
        if r["model_fingerprint"] != fingerprint:
            diff["model"] = (r["model_fingerprint"], fingerprint)
        if diff:
            raise NmjaxError(f"{layer_dir(out, layer)} holds shard {r['shard']} with other settings "
                             f"(shard, now: {diff}); use the same model and settings, or "
                             "another --out folder")


def decode_shard(net, shard: Shard, layers: list[int] | None = None,
                 neurons: list[int] | None = None, seed: int = 0, config=None,
                 out: str | os.PathLike = "nmjax-decode", progress: bool = True,
                 model: str = "") -> dict[int, list[int]]:
    """Sample and decouple (first round) this shard's neurons of every layer in `layers`
    (default all) into `out`, skipping finished neurons. Each layer l > 1 needs layer l-1
    complete (merged) in `out` when the GA is seeded. Returns {layer: the shard's neurons}."""
    config = config or DecodeConfig()
    out = Path(out)
    layers = requested_layers(net, layers)
    check_same_run(out, seed, config)
    fingerprint = model_fingerprint(net)
    below: dict[int, object] = {}
    for l in layers:
        _check_records(out, l, read_shard_records(out, l), seed, config, fingerprint)
        if config.seed_from_previous and l > 1:
            below[l] = load_layer(out, l - 1)
            if below[l] is None:
                raise NmjaxError(
                    f"shard {shard.index}/{shard.count} of layer {l} needs layer {l - 1} "
                    f"complete in {out}, and it is not: run every shard of layer {l - 1} "
                    f"(--layers {l - 1} --shard i/{shard.count}), then `nmjax merge {out}`")

    def one(l: int, _) -> list[int]:
        selection = net.neurons_of(l, clipped_neurons(net, l, neurons))
        mine = shard.select(selection)
        d = layer_dir(out, l)
        samples, timings = sample_layer(net, l, mine, seed, config, d, below.get(l), progress)
        summarise_rounds(net, l, samples, {n: neuron_key(seed, l, n) for n in mine},
                         first_round_config(config), d, progress)
        record = {"shard": f"{shard.index}/{shard.count}", "layer": l, "neurons": mine,
                  "selection": None if neurons is None else selection, "seed": seed,
                  "parameters": dataclasses.asdict(config), "model": model,
                  "model_fingerprint": fingerprint, "devices": device_count(),
                  "timings": timings}
        write_text(shard_record_path(out, l, shard.name),
                   json.dumps(record, indent=2, sort_keys=True) + "\n")
        return mine

    return layer_by_layer(layers, one)


def merge(net, out: str | os.PathLike, layers: list[int] | None = None,
          progress: bool = True) -> dict:
    """Assemble the layer files of `layers` (default: every layer with shard records in `out`
    that is not merged yet) from the shards' per-neuron files, with the rounds rule of a single
    run; refuses, naming them, if neurons are missing. Returns {layer: LayerResult}."""
    out = Path(out)
    sharded = layers_with(out, "shards/shard*of*.json")
    if not sharded:
        raise NmjaxError(f"no shard records (layer*/shards/*.json) in {out}: run "
                         "`nmjax decode --shard i/n --out DIR` first")
    if layers is None:
        layers = [l for l in sharded if load_layer(out, l) is None]
    layers = sorted(set(layers))
    fingerprint = model_fingerprint(net)
    merged = {}
    for l in layers:
        records = read_shard_records(out, l)
        if not records:
            raise NmjaxError(f"no shard of layer {l} in {out}: run `nmjax decode --layers {l} "
                             f"--shard i/n --out {out}` for every i first")
        first = records[0]
        seed, config = first["seed"], DecodeConfig(**first["parameters"])
        _check_records(out, l, records, seed, config, fingerprint)
        check_same_run(out, seed, config)
        selections = {json.dumps(r["selection"]) for r in records}
        if len(selections) > 1:
            raise NmjaxError(f"the shards of layer {l} in {out} were run with different "
                             f"--neurons selections: {sorted(selections)}")
        selection = net.neurons_of(l, first["selection"])
        _check_complete(out, l, selection, records)
        samples = StoredSamples(layer_dir(out, l), selection)
        timings = _merged_timings([r["timings"] for r in records])
        timings.update({"shards": sorted(r["shard"] for r in records)})
        merged[l] = finish_layer(net, l, samples, seed, config, out, progress,
                                 first["model"], timings)
    return merged


def _check_complete(out: Path, layer: int, selection: list[int], records: list[dict]) -> None:
    """Refuse to merge a layer while a neuron of its selection has no samples, naming the
    shards that own the missing neurons."""
    missing = [n for n in selection if not sample_path(layer_dir(out, layer), n).exists()]
    if missing:
        counts = {int(r["shard"].split("/")[1]) for r in records}
        owners = sorted({(c, n % c) for n in missing for c in counts})
        raise NmjaxError(f"cannot merge layer {layer} of {out}: {len(missing)} neuron(s) not "
                         f"decoded yet: {neuron_ranges(missing)} (shards "
                         f"{', '.join(f'{i}/{c}' for c, i in owners)}); run those shards "
                         "(finished neurons are skipped) and merge again")


def _merged_timings(per_shard: list[dict]) -> dict:
    """One layer's sampling timings from its shards' records: neuron counts and seconds add
    up; a setting that differs between shards (batch, budget, devices) lists their values."""
    total = {}
    for key in per_shard[0]:
        values = [t[key] for t in per_shard]
        if key in ("neurons", "neurons_sampled_this_run", "sampling_seconds"):
            total[key] = sum(values)
        else:
            distinct = [v for i, v in enumerate(values) if v not in values[:i]]
            total[key] = distinct[0] if len(distinct) == 1 else distinct
    return total


def neuron_ranges(values: list[int]) -> str:
    """[0, 1, 2, 5] -> '0-2,5' (the --neurons syntax)."""
    out, start = [], None
    for i, v in enumerate(values):
        if start is None:
            start = v
        if i + 1 == len(values) or values[i + 1] != v + 1:
            out.append(f"{start}-{v}" if v > start else f"{v}")
            start = None
    return ",".join(out)
