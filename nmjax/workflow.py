"""A decode as a Snakemake workflow: one job per layer shard, one merge per layer, the report.

`write_workflow` writes DIR/Snakefile (shipped in nmjax/data/workflow/) and its settings,
DIR/nmjax-workflow.json; the decode's output folder is DIR itself. Jobs (rules):
- shard: `nmjax decode MODEL --layers L --shard i/n --out DIR` (output: the shard record
  layer{L}/shards/shard{i}of{n}.json, written once the shard's neurons are done); each shard
  of layer L > 1 needs layer L-1 merged, as its motifs seed the GA;
- merge: `nmjax merge DIR MODEL --layers L` (output: the layer's neurons.tsv, ppms.meme,
  motifs.meme);
- report: `nmjax report DIR`, the matching, grammar, diagnostics and HTML report that
  `nmjax decode` runs after decoding.
A layer gets min(shards, its neurons) shards, and the workflow decodes every layer from 1 to the
highest one requested (as `nmjax decode` does for seeding). Every file is written atomically and
a shard rerun skips its finished neurons, so a killed run resumed by Snakemake loses none.
`run_workflow` runs it through the snakemake command line (`pip install 'nmjax[cluster]'`).
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

from .config import DecodeConfig
from .decoder import clipped_neurons, requested_layers
from .distribute import neuron_ranges
from .errors import NmjaxError
from .fileio import write_text
from .runfolder import check_same_run

SETTINGS_FILE = "nmjax-workflow.json"
# host memory of a decode or merge job beyond the GA's temporary memory (--memory-budget):
# the JAX runtime, the model, a layer's sample sets and the decoupling's feature maps
JOB_MEMORY_ALLOWANCE_MB = 4096
# DecodeConfig fields the `nmjax decode` command line sets, and its flag for each
CLI_FLAGS = {"method": "--method", "mutation": "--mutation", "precision": "--precision",
             "rounds": "--rounds", "population": "--population",
             "max_generations": "--max-generations", "neuron_batch": "--batch",
             "memory_budget": "--memory-budget", "segment_rule": "--segment-rule",
             "seeding": "--seeding", "patience": "--patience", "rounds_ratio": "--rounds-ratio",
             "ratio_tie_margin": "--ratio-tie-margin", "empty_bin": "--empty-bin"}
# DecodeConfig booleans the command line sets with a flag: (field, value the flag gives, flag)
CLI_SWITCHES = (("keep_initial_population", True, "--keep-initial-population"),
                ("cap_enumerated", False, "--no-enumeration-cap"))


@dataclasses.dataclass(frozen=True)
class Workflow:
    """What to decode and how: the settings `nmjax decode` would take, and the job layout.

    model: model file (None: the bundled example); layers: highest layers to decode (None:
    all); shards: jobs per layer; gpus: GPUs per shard job (Snakemake's `gpu` resource);
    report: run the final analysis job, with `report_args` (--motif-db, --release, --distance).
    """

    model: str | None = None
    architecture: str | None = None
    layers: tuple[int, ...] | None = None
    neurons: tuple[int, ...] | None = None
    seed: int = 0
    config: DecodeConfig = DecodeConfig()
    shards: int = 1
    gpus: int = 0
    report: bool = True
    report_args: tuple[str, ...] = ()

    def __post_init__(self):
        if self.shards < 1:
            raise NmjaxError(f"--shards must be at least 1, not {self.shards}")
        if self.gpus < 0:
            raise NmjaxError(f"--gpus must be 0 or more, not {self.gpus}")


def decode_arguments(config: DecodeConfig, seed: int, neurons: tuple[int, ...] | None
                     ) -> list[str]:
    """The `nmjax decode` arguments that give `config`, `seed` and the neuron selection; an
    error for a setting that the command line cannot express."""
    default = DecodeConfig()
    switches = {name for name, _, _ in CLI_SWITCHES}
    other = [f.name for f in dataclasses.fields(config) if f.name not in CLI_FLAGS
             and f.name not in switches and getattr(config, f.name) != getattr(default, f.name)]
    if other:
        raise NmjaxError(f"the workflow's jobs run the nmjax command line, which cannot set "
                         f"{', '.join(other)}; keep their defaults")
    args = ["--seed", str(seed)]
    for name, flag in CLI_FLAGS.items():
        value = getattr(config, name)
        if value is not None:
            args += [flag, str(value)]
    args += [flag for name, value, flag in CLI_SWITCHES if getattr(config, name) == value]
    if neurons is not None:
        args += ["--neurons", neuron_ranges(sorted(neurons))]
    return args


def layer_shards(net, spec: Workflow) -> dict[int, int]:
    """{layer: shard count} for layers 1..the highest requested: min(shards, its neurons)."""
    top = requested_layers(net, list(spec.layers) if spec.layers else None)[-1]
    selection = list(spec.neurons) if spec.neurons is not None else None
    return {l: min(spec.shards, len(net.neurons_of(l, clipped_neurons(net, l, selection))))
            for l in range(1, top + 1)}


def job_resources(spec: Workflow) -> dict[str, dict]:
    """Snakemake resources per rule: mem_mb of decode and merge jobs from the memory budget
    (plus `JOB_MEMORY_ALLOWANCE_MB`), `gpu` of the shard jobs."""
    memory = {} if spec.config.memory_budget is None else {
        "mem_mb": -(-spec.config.memory_budget // (1 << 20)) + JOB_MEMORY_ALLOWANCE_MB}
    gpu = {"gpu": spec.gpus} if spec.gpus else {}
    return {"shard": {**memory, **gpu}, "merge": dict(memory), "report": {}}


def workflow_settings(net, spec: Workflow) -> dict:
    """The contents of nmjax-workflow.json (read by the Snakefile as its config)."""
    model = str(Path(spec.model).resolve()) if spec.model is not None else ""
    model_args = ["--architecture", str(Path(spec.architecture).resolve())] \
        if spec.architecture else []
    return {"python": sys.executable, "model": model, "model_args": model_args,
            "shards": {str(l): n for l, n in layer_shards(net, spec).items()},
            "decode_args": decode_arguments(spec.config, spec.seed, spec.neurons),
            "report": spec.report, "report_args": list(spec.report_args),
            "resources": job_resources(spec)}


def write_workflow(net, spec: Workflow, out: str | os.PathLike) -> Path:
    """Write DIR/Snakefile and DIR/nmjax-workflow.json (each only if it changed); checks the
    settings against a decode already in DIR first. Returns the Snakefile's path."""
    out = Path(out)
    check_same_run(out, spec.seed, spec.config)
    settings = json.dumps(workflow_settings(net, spec), indent=2, sort_keys=True) + "\n"
    snakefile = resources.files("nmjax").joinpath("data/workflow/Snakefile").read_text()
    for name, text in (("Snakefile", snakefile), (SETTINGS_FILE, settings)):
        path = out / name
        if not path.exists() or path.read_text() != text:
            write_text(path, text)
    return out / "Snakefile"


def snakemake_command(out: str | os.PathLike, cores: int, extra: list[str]) -> list[str]:
    """The snakemake call that runs (or resumes) the workflow in DIR: incomplete jobs are rerun
    (a shard rerun only decodes its unfinished neurons); `extra` goes to snakemake as given."""
    out = Path(out)
    return [sys.executable, "-m", "snakemake", "--snakefile", str(out / "Snakefile"),
            "--directory", str(out), "--cores", str(cores), "--rerun-incomplete", *extra]


def run_workflow(out: str | os.PathLike, cores: int = 1, extra: list[str] = ()) -> int:
    """Run the workflow in DIR with snakemake; its exit code."""
    if importlib.util.find_spec("snakemake") is None:
        raise NmjaxError("snakemake is not installed: pip install 'nmjax[cluster]' (or run "
                         "the written Snakefile with your own snakemake)")
    if cores < 1:
        raise NmjaxError(f"--cores must be at least 1, not {cores}")
    return subprocess.run(snakemake_command(out, cores, list(extra))).returncode
