"""The run folder of a decode: its layout, the names in it, and its readers and writers.

    DIR/run.json                             parameters, seed, versions; per layer timings, the
                                             rounds chosen and the rounds rule's test of each
    DIR/layer{L}/samples/neuron{N}.h5        sampled sequences (bases 0..3 = ACGT), f, generations
    DIR/layer{L}/parts/neuron{N}.r{R}.npz    decoupled subsets of one neuron after R rounds
    DIR/layer{L}/shards/shard{i}of{n}.json   what one shard of a cluster decode did
    DIR/layer{L}/ppms.meme, motifs.meme, neurons.tsv   assembled once the layer is complete

ppms.meme holds every subset's PPM over the whole receptive field (Laplace-smoothed, M = 80;
nsites = n), named L{L}_N{neuron}_S{subset}; motifs.meme the segments of those smoothed PPMs,
named L{L}_N{neuron}_S{subset}_{start}-{end} with 0-based start and exclusive end (a Python
slice of the PPM). neurons.tsv has one row per subset; a dead neuron (no f > 0) is one row
`neuron 0 0 nan nan` with an empty consensus. The analyses (match, grammar, diagnose, report,
validation) read a run through this module and write their files beside these.
"""
from __future__ import annotations

import csv
import dataclasses
from collections.abc import Mapping
import json
import os
import platform
import re
from pathlib import Path

import jax
import numpy as np

from .config import FREE_SETTINGS, VERSION, DecodeConfig
from .errors import NmjaxError
from .fileio import atomic_path, check_output_dir, write_text
from .meme import Motif, read_meme, write_meme
from .motifs import consensus_string, segment_ppm, segment_rule
from .results import LayerResult, NeuronResult

NEURON_COLUMNS = ("neuron", "subset", "n", "act", "conact", "consensus")
LAYER_FILES = ("ppms.meme", "motifs.meme", "neurons.tsv")
_LAYER_DIR = re.compile(r"layer(\d+)")
_PPM_NAME = re.compile(r"L(\d+)_N(\d+)_S(\d+)")


# -- names --------------------------------------------------------------------------------
def layer_dir(out: str | os.PathLike, layer: int) -> Path:
    """DIR/layer{L}: every file of one layer."""
    return Path(out) / f"layer{layer}"


def layer_of(layer_path: str | os.PathLike) -> int:
    """L of a layer folder DIR/layer{L}."""
    return int(_LAYER_DIR.fullmatch(Path(layer_path).name).group(1))


def neuron_page_path(layer: int, neuron: int) -> str:
    """A neuron's report page, relative to DIR/report/."""
    return f"layer{layer}/neuron{neuron}.html"


def sample_path(layer_path: Path, neuron: int) -> Path:
    return layer_path / "samples" / f"neuron{neuron}.h5"


def part_path(layer_path: Path, neuron: int, rounds: int) -> Path:
    return layer_path / "parts" / f"neuron{neuron}.r{rounds}.npz"


def neuron_tag(layer: int, neuron: int) -> str:
    """L{L}_N{neuron}: how a neuron is named in motif and region names."""
    return f"L{layer}_N{neuron}"


def ppm_name(layer: int, neuron: int, subset: int) -> str:
    return f"{neuron_tag(layer, neuron)}_S{subset}"


def parse_ppm_name(name: str) -> tuple[int, int, int]:
    """(layer, neuron, subset) of a decoder PPM name L{L}_N{n}_S{s} (or a segment's name)."""
    m = _PPM_NAME.match(name)
    if not m:
        raise NmjaxError(f"motif name {name!r} is not of the decoder's form "
                         f"L<layer>_N<neuron>_S<subset>")
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def decoded_layers(out_dir: str | os.PathLike) -> list[int]:
    """Layer numbers L with a DIR/layer{L}/ directory holding ppms.meme, ascending."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise NmjaxError(f"{out_dir} is not a directory; give the output directory of `nmjax decode`")
    layers = sorted(int(m.group(1)) for p in out_dir.iterdir()
                    if (m := _LAYER_DIR.fullmatch(p.name)) and (p / "ppms.meme").is_file())
    if not layers:
        raise NmjaxError(f"{out_dir} holds no layer*/ppms.meme; "
                         f"is it an `nmjax decode` output directory?")
    return layers


def layers_with(out: str | os.PathLike, pattern: str) -> list[int]:
    """The layers L whose folder holds a file matching `pattern` (a glob below layer{L}/)."""
    return sorted({layer_of(p.relative_to(out).parts[0])
                   for p in Path(out).glob(f"layer*/{pattern}")})


def shard_record_path(out: str | os.PathLike, layer: int, shard_name: str) -> Path:
    return layer_dir(out, layer) / "shards" / f"{shard_name}.json"


def read_shard_records(out: str | os.PathLike, layer: int | None = None) -> list[dict]:
    """The shard records of `layer` (None: of every layer), in path order."""
    folder = "layer*" if layer is None else f"layer{layer}"
    return [json.loads(p.read_text())
            for p in sorted(Path(out).glob(f"{folder}/shards/shard*of*.json"))]


# -- per-neuron files ---------------------------------------------------------------------
def write_samples(path: Path, layer: int, neuron: int, bases, f, generations: int,
                  method: str) -> None:
    import h5py

    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as h5:
            h5.create_dataset("sequences", data=bases, compression="gzip")
            h5.create_dataset("f", data=f)
            h5.attrs.update({"layer": layer, "neuron": neuron, "generations": generations,
                             "alphabet": "ACGT", "method": method})


def read_samples(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """(bases, f, generations) of one neuron's samples file."""
    import h5py

    with h5py.File(path, "r") as h5:
        return h5["sequences"][()], h5["f"][()], int(h5.attrs["generations"])


class StoredSamples(Mapping):
    """A layer's samples as neuron -> (bases, f, generations), each read from its samples/ file
    when asked for: no step needs two neurons' samples at once, and a layer of 200 Basset
    layer-3 neurons holds 2-3 GB of sequences."""

    def __init__(self, layer_path: Path, neurons: list[int]):
        self.layer_path, self.neurons = layer_path, list(neurons)

    def __getitem__(self, neuron: int) -> tuple[np.ndarray, np.ndarray, int]:
        if neuron not in self.neurons:
            raise KeyError(neuron)
        return read_samples(sample_path(self.layer_path, neuron))

    def __iter__(self):
        return iter(self.neurons)

    def __len__(self) -> int:
        return len(self.neurons)


def sample_sizes(samples: Mapping) -> dict[int, tuple[int, int]]:
    """neuron -> (generations, samples kept), reading only the files' headers where `samples`
    are stored."""
    if not isinstance(samples, StoredSamples):
        return {n: (g, len(f)) for n, (_, f, g) in samples.items()}
    import h5py

    sizes = {}
    for n in samples:
        with h5py.File(sample_path(samples.layer_path, n), "r") as h5:
            sizes[n] = int(h5.attrs["generations"]), len(h5["f"])
    return sizes


def write_part(path: Path, r: NeuronResult) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, ppms=r.ppms, n=r.n, act=r.act, conact=r.conact, consensus=r.consensus,
                     meta=np.array([r.layer, r.neuron, r.generations, r.rounds]))


def read_part(path: Path) -> NeuronResult:
    with np.load(path) as d:
        layer, neuron, generations, rounds = d["meta"].tolist()
        return NeuronResult(d["ppms"], d["n"], d["act"], d["conact"], d["consensus"],
                            layer, neuron, generations, rounds)


# -- the layer files ----------------------------------------------------------------------
def _neuron_rows(r: NeuronResult) -> list[str]:
    """A neuron's neurons.tsv rows: one per subset, or the dead neuron's row."""
    if r.dead:
        return [f"{r.neuron}\t0\t0\tnan\tnan\t"]
    return [f"{r.neuron}\t{s}\t{r.n[s]}\t{r.act[s]:.6g}\t{r.conact[s]:.6g}\t"
            f"{consensus_string(r.consensus[s])}" for s in range(len(r.n))]


def layer_files(result: LayerResult, config: DecodeConfig) -> dict[str, object]:
    """The assembled layer outputs: ppms.meme and motifs.meme motif lists, neurons.tsv text."""
    ppms, segs = [], []
    rule = segment_rule(config.segment_rule)
    rows = ["\t".join(NEURON_COLUMNS)]
    for neuron in sorted(result.neurons):
        r = result.neurons[neuron]
        rows += _neuron_rows(r)
        for s, smooth in enumerate(r.smoothed(config.laplace_pseudocount)):
            name = ppm_name(result.layer, neuron, s)
            ppms.append(Motif(name, smooth, int(r.n[s])))
            for start, end in segment_ppm(r.ppms[s], int(r.n[s]), rule):
                segs.append(Motif(f"{name}_{start}-{end}", smooth[start:end], int(r.n[s])))
    return {"ppms.meme": ppms, "motifs.meme": segs, "neurons.tsv": "\n".join(rows) + "\n"}


def write_layer(out: Path, result: LayerResult, config: DecodeConfig) -> None:
    files = layer_files(result, config)
    d = layer_dir(out, result.layer)
    write_meme(d / "ppms.meme", files["ppms.meme"])
    write_meme(d / "motifs.meme", files["motifs.meme"])
    write_text(d / "neurons.tsv", files["neurons.tsv"])


def _read_motif_file(path: Path) -> list[Motif]:
    """The motifs of a MEME file; none if it is missing or holds only the header (a layer whose
    neurons are all dead, or with no motif)."""
    if not path.is_file():
        return []
    with open(path) as fh:
        if not any(line.startswith("MOTIF") for line in fh):
            return []
    return read_meme(path)


def read_ppms(layer_path: str | os.PathLike) -> list[Motif]:
    """The subsets' smoothed PPMs of a layer (ppms.meme)."""
    return _read_motif_file(Path(layer_path) / "ppms.meme")


def read_segments(layer_path: str | os.PathLike) -> list[Motif]:
    """The PPMs' segments of a layer (motifs.meme)."""
    return _read_motif_file(Path(layer_path) / "motifs.meme")


@dataclasses.dataclass(frozen=True)
class SubsetRow:
    """One decoupled subset of a neuron, a row of neurons.tsv."""

    neuron: int
    subset: int
    n: int
    act: float
    conact: float
    consensus: str


def _num(text: str) -> float:
    return float(text) if text not in ("", "nan", "NA") else float("nan")


def read_neurons(layer_path: str | os.PathLike) -> list[SubsetRow]:
    """Rows of DIR/layer{L}/neurons.tsv (columns by header name)."""
    path = Path(layer_path) / "neurons.tsv"
    try:
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh, delimiter="\t"))
    except OSError as e:
        raise NmjaxError(f"cannot read {path}: {e.strerror}; is this an `nmjax decode` output?") from e
    if not rows:
        raise NmjaxError(f"{path} is empty; expected a header {' '.join(NEURON_COLUMNS)}")
    header = rows[0]
    missing = [c for c in NEURON_COLUMNS if c not in header]
    if missing:
        raise NmjaxError(f"{path}: missing column(s) {', '.join(missing)} in the header")
    idx = {c: header.index(c) for c in NEURON_COLUMNS}
    out = []
    for k, r in enumerate(rows[1:], start=2):
        if not r:
            continue
        try:
            out.append(SubsetRow(int(r[idx["neuron"]]), int(r[idx["subset"]]), int(r[idx["n"]]),
                                 _num(r[idx["act"]]), _num(r[idx["conact"]]),
                                 r[idx["consensus"]] if idx["consensus"] < len(r) else ""))
        except (ValueError, IndexError) as e:
            raise NmjaxError(f"{path}: line {k}: bad row {r!r} ({e})") from e
    return out


# -- run.json -----------------------------------------------------------------------------
def read_run(out: str | os.PathLike) -> dict | None:
    """DIR/run.json (None where there is none)."""
    path = Path(out) / "run.json"
    return json.loads(path.read_text()) if path.exists() else None


def _versions() -> dict:
    return {"nmjax": VERSION, "jax": jax.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "backend": jax.default_backend()}


def update_run(out: Path, seed: int, config: DecodeConfig, model: str,
               result: LayerResult | None) -> None:
    """Record the run's settings and versions in run.json, and `result`'s timings and rounds."""
    run = read_run(out) or {}
    run.update({"model": model, "seed": seed, "parameters": dataclasses.asdict(config),
                "versions": _versions()})
    run.setdefault("layers", {})
    if result is not None:
        run["layers"][str(result.layer)] = {**result.timings, "rounds": result.rounds}
    write_text(out / "run.json", json.dumps(run, indent=2, sort_keys=True) + "\n")


def settings_diff(old_parameters: dict, old_seed: int, config: DecodeConfig, seed: int) -> dict:
    """{setting: (old, now)} for every setting and the seed that differ, free ones excepted.
    A setting the old run did not record (it predates it) had its default value."""
    old = {**dataclasses.asdict(DecodeConfig()), **old_parameters}
    now = {k: v for k, v in dataclasses.asdict(config).items() if k not in FREE_SETTINGS}
    diff = {k: (old[k], v) for k, v in now.items() if old[k] != v}
    if old_seed != seed:
        diff["seed"] = (old_seed, seed)
    return diff


def check_same_run(out: Path, seed: int, config: DecodeConfig) -> None:
    """Refuse an output folder that is a file, or one decoded with another seed or other
    parameters (resuming there would mix two runs)."""
    check_output_dir(out)
    run = read_run(out)
    if run is None:
        return
    diff = settings_diff(run.get("parameters", dataclasses.asdict(config)), run.get("seed", seed),
                         config, seed)
    if diff:
        raise NmjaxError(f"{out} holds a decode with other settings (previous, now: {diff}); "
                         "use another --out folder or the same settings to resume")


def load_layer(out: str | os.PathLike, layer: int) -> LayerResult | None:
    """A completed layer of a previous run's output directory (None if not complete there)."""
    run = read_run(out)
    if run is None or not (layer_dir(out, layer) / "neurons.tsv").exists():
        return None
    info = run.get("layers", {}).get(str(layer))
    if info is None:
        return None
    rounds = info["rounds"]
    parts = sorted((layer_dir(out, layer) / "parts").glob(f"neuron*.r{rounds}.npz"))
    results = {r.neuron: r for r in map(read_part, parts)}
    return LayerResult(layer, results, rounds, info)
