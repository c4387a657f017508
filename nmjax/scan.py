"""`nmjax scan`: where in real sequences each neuron fires, and whether its motifs are there.

One streaming pass (`nmjax.scanning`) computes every requested neuron at every base of every
sequence, both strands, and keeps per neuron its top non-overlapping windows. Per neuron it
then writes (DIR/layer{L}/scan/):
- neuron{N}.bed: the top regions, BED6 (chrom, start, end, name, score = f, strand), best
  first; the strand is the one the neuron scored higher;
- neuron{N}_logo.svg: the activation-weighted PPM of the top regions (each read on its
  strand, weighted by max(f, 0));
- neuron{N}_motifs.tsv / .svg: motif-position profiles as in the paper's Fig. 6e,f: each region
  is extended to `extend` bp around its centre (from the genome or record it lies in; N past
  either end), read on its strand, and every site of the neuron's motifs (`nmjax.validation.
  neuron_motifs`; p <= 1e-4, `nmjax.sites`) is counted at its centre's offset from the
  region's centre, on the region's strand ("same") or the other ("opposite");
- neuron{N}.json: all of the above as numbers; summary.tsv per layer; DIR/scan.json: inputs,
  settings and counts.
An interrupted scan resumes from DIR/.scan-state.npz (saved every minute) when rerun with the
same inputs and settings, and gives the same files.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import jax
import numpy as np

from .arrays import normalise_rows
from .errors import NmjaxError
from .fileio import atomic_path, write_text
from .meme import Motif
from .network import Network
from .runfolder import layer_dir, neuron_tag
from .scanning import (CANDIDATES_PER_REGION, DEFAULT_BATCH, DEFAULT_CHUNK, TopCandidates,
                       Stream, batch_count, chunk_batches, scan_program, scan_shape)
from .sequences import (Interval, extract, read_bed, read_fasta, reverse_complement,
                        whole_records)
from .sites import P_VALUE, find_sites

CHECKPOINT_SECONDS = 60.0


@dataclass(frozen=True)
class ScanConfig:
    """top regions per neuron, extension (bp) of the motif profiles, site p-value threshold,
    bases per chunk and chunks per call of the scanning program."""

    top: int = 3000
    extend: int = 1000
    p_value: float = P_VALUE
    chunk: int = DEFAULT_CHUNK
    batch: int = DEFAULT_BATCH

    def check(self) -> None:
        if self.top < 1 or self.extend < 1 or self.chunk < 1 or self.batch < 1:
            raise NmjaxError(f"top, extend, chunk and batch must be positive: {self}")
        if not 0 < self.p_value < 1:
            raise NmjaxError(f"the site p-value threshold must be in (0, 1), not {self.p_value}")


@dataclass(frozen=True)
class Region:
    """One top window: BED coordinates, strand, f, and the input interval it lies in."""

    chrom: str
    start: int
    end: int
    strand: str
    score: float
    source: str


@dataclass(frozen=True)
class MotifProfile:
    """Site-centre counts of one motif per offset from the region centre (Fig. 6e,f), on the
    region's strand and the other, and the fraction of regions with a site inside the window."""

    motif: str
    name: str
    offsets: np.ndarray
    same: np.ndarray
    opposite: np.ndarray
    in_window: float


@dataclass(frozen=True)
class NeuronScan:
    layer: int
    neuron: int
    regions: tuple[Region, ...]
    ppm: np.ndarray
    profiles: tuple[MotifProfile, ...]


def load_sequences(fasta: str | os.PathLike | None = None, bed: str | os.PathLike | None = None,
                   genome: str | os.PathLike | None = None
                   ) -> tuple[dict[str, np.ndarray], list[Interval]]:
    """Sequences and the intervals to scan: every record of `fasta`, or the `bed` intervals
    of `genome`."""
    if (fasta is None) == (bed is None) or (bed is not None) != (genome is not None):
        raise NmjaxError("give the sequences to scan: --fasta FILE, or --bed FILE with "
                         "--genome FASTA")
    if fasta is not None:
        sequences = read_fasta(fasta)
        return sequences, whole_records(sequences)
    sequences = read_fasta(genome)
    return sequences, read_bed(bed, sequences, genome)


def stream_candidates(net: Network, sequences: dict[str, np.ndarray],
                      intervals: Sequence[Interval], layers: Sequence[int],
                      neurons: Sequence[Sequence[int]], settings: ScanConfig = ScanConfig(),
                      state: Path | None = None, progress: bool = False
                      ) -> dict[int, TopCandidates]:
    """The scanning pass: per layer the best candidate windows of every requested neuron."""
    from tqdm import tqdm

    shape = scan_shape(net, layers, neurons, settings.chunk, settings.batch)
    program = scan_program(net.config, shape)
    size = CANDIDATES_PER_REGION * settings.top
    tops = {l: TopCandidates.empty(size, len(n)) for l, n in zip(layers, neurons)}
    fingerprint = _fingerprint(net, sequences, intervals, shape, settings) if state else ""
    done = _resume(state, tops, fingerprint) if state else 0
    saved = time.monotonic()
    stream = Stream.of(intervals)
    bar = tqdm(total=batch_count(stream, shape), initial=done, unit="batch",
               desc=f"scanning layers {','.join(map(str, layers))}", disable=not progress)
    for codes, start in chunk_batches(sequences, stream, shape, skip=done):
        out = program(net.params, codes)
        for l, top in tops.items():
            top.add(*(np.asarray(a) for a in out[l]), start)
        done += 1
        bar.update()
        if state and time.monotonic() - saved > CHECKPOINT_SECONDS:
            _checkpoint(state, tops, done, fingerprint)
            saved = time.monotonic()
    bar.close()
    if state:
        _checkpoint(state, tops, done, fingerprint)
    return tops


def _fingerprint(net: Network, sequences: dict[str, np.ndarray], intervals, shape,
                 settings: ScanConfig) -> str:
    """What a saved state must match to be resumed: model, settings, intervals and bases."""
    h = hashlib.sha256(json.dumps([net.config.to_json(), asdict(shape), asdict(settings),
                                   [asdict(iv) for iv in intervals]]).encode())
    for leaf in jax.tree_util.tree_leaves(net.params):
        h.update(np.asarray(leaf).tobytes())
    for chrom in sorted({iv.chrom for iv in intervals}):
        h.update(sequences[chrom].tobytes())
    return h.hexdigest()


def _checkpoint(path: Path, tops: dict[int, TopCandidates], done: int, fingerprint: str) -> None:
    arrays = {"done": np.array(done), "fingerprint": np.array(fingerprint)}
    for l, top in tops.items():
        top.merge()
        arrays |= {f"value{l}": top.value, f"key{l}": top.key, f"strand{l}": top.strand}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def _resume(path: Path, tops: dict[int, TopCandidates], fingerprint: str) -> int:
    """Batches already scanned by an interrupted run with the same fingerprint (else 0)."""
    if not path.is_file():
        return 0
    with np.load(path) as saved:
        if str(saved["fingerprint"]) != fingerprint:
            return 0
        for l, top in tops.items():
            top.value, top.key, top.strand = (saved[f"{k}{l}"] for k in ("value", "key", "strand"))
        return int(saved["done"])


def neuron_scan(sequences: dict[str, np.ndarray], intervals: Sequence[Interval],
                top: TopCandidates, column: int, layer: int, neuron: int, receptive: int,
                motifs: Sequence[Motif], settings: ScanConfig = ScanConfig()) -> NeuronScan:
    """Top regions, their weighted logo and the motif-position profiles of one neuron."""
    found = top.regions(column, settings.top, receptive, Stream.of(intervals))
    regions = tuple(Region(intervals[i].chrom, intervals[i].start + s,
                           intervals[i].start + s + receptive, "-" if strand else "+", f,
                           intervals[i].name) for i, s, strand, f in found)
    extend = max(settings.extend, receptive)
    extend += (extend - receptive) % 2         # the window sits in the middle on either strand
    lead = (extend - receptive) // 2
    ext = np.zeros((len(regions), extend), np.uint8)
    for k, r in enumerate(regions):
        ext[k] = extract(sequences, r.chrom, r.start - lead, r.start - lead + extend)
        if r.strand == "-":
            ext[k] = reverse_complement(ext[k])
    weights = np.maximum([r.score for r in regions], 0.0)
    ppm = _weighted_ppm(ext[:, lead:lead + receptive],
                        weights if weights.sum() > 0 else np.ones(len(regions)))
    profiles = tuple(_profile(m, ext, lead, receptive, settings.p_value) for m in motifs)
    return NeuronScan(layer, neuron, regions, ppm, profiles)


def _weighted_ppm(windows: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted base frequencies per column (N counts for no base); uniform where empty."""
    onehot = np.eye(5)[windows][..., :4] if len(windows) else np.zeros((0, windows.shape[1], 4))
    return normalise_rows(np.einsum("r,rlb->lb", weights, onehot))


def _profile(motif: Motif, ext: np.ndarray, lead: int, receptive: int,
             p_value: float) -> MotifProfile:
    extend, width = ext.shape[1], len(motif.ppm)
    sites = find_sites(motif.ppm, ext, p_value)
    centre = sites.start + width // 2
    same = np.bincount(centre[sites.strand > 0], minlength=extend)[:extend]
    opposite = np.bincount(centre[sites.strand < 0], minlength=extend)[:extend]
    inside = (sites.start >= lead) & (sites.start + width <= lead + receptive)
    frac = len(np.unique(sites.row[inside])) / len(ext) if len(ext) else float("nan")
    return MotifProfile(motif.name, motif.alt_name or motif.name,
                        np.arange(extend) - (lead + receptive // 2), same, opposite, frac)


def scan(net: Network, fasta: str | os.PathLike | None = None, *,
         bed: str | os.PathLike | None = None, genome: str | os.PathLike | None = None,
         layers: Sequence[int] | None = None, neurons: Sequence[int] | None = None,
         settings: ScanConfig = ScanConfig(), out: str | os.PathLike | None = None,
         decode_dir: str | os.PathLike | None = None, progress: bool = False
         ) -> dict[int, list[NeuronScan]]:
    """Scan `fasta` (or the `bed` intervals of `genome`) with `neurons` (default all) of
    `layers` (default all); write DIR/layer{L}/scan/ when `out` is given. Motif profiles use
    the motifs of each neuron decoded in `decode_dir` (default `out`; none if not decoded)."""
    settings.check()
    layers = sorted(set(layers or range(1, net.num_conv_layers + 1)))
    chosen = [tuple(net.neurons_of(l, neurons)) for l in layers]
    sequences, intervals = load_sequences(fasta, bed, genome)
    shortest = min(net.receptive_field(l) for l in layers)
    if max(iv.length for iv in intervals) < shortest:
        raise NmjaxError(f"no sequence to scan is as long as the {shortest} bp receptive field "
                         f"of layer {layers[0]}; give longer sequences or a shallower layer")
    t0 = time.perf_counter()
    state = Path(out) / ".scan-state.npz" if out is not None else None
    tops = stream_candidates(net, sequences, intervals, layers, chosen, settings, state, progress)
    seconds = time.perf_counter() - t0
    decode_dir = decode_dir if decode_dir is not None else out
    results = {}
    for l, chans in zip(layers, chosen):
        n = net.receptive_field(l)
        results[l] = [neuron_scan(sequences, intervals, tops[l], k, l, c, n,
                                  _motifs(decode_dir, l, c), settings)
                      for k, c in enumerate(chans)]
        if out is not None:
            write_layer_scan(layer_dir(out, l) / "scan", results[l], n, settings)
    if out is not None:
        write_text(Path(out) / "scan.json", json.dumps({
            "inputs": {"fasta": str(fasta) if fasta else None, "bed": str(bed) if bed else None,
                       "genome": str(genome) if genome else None},
            "intervals": len(intervals), "bases": int(sum(iv.length for iv in intervals)),
            "layers": {str(l): {"neurons": list(c), "receptive_field": net.receptive_field(l)}
                       for l, c in zip(layers, chosen)},
            "settings": asdict(settings), "scan_seconds": round(seconds, 2),
            "rules": {"n_bases": "a window holding an N or running past its interval is not "
                                 "scored", "strands": "both; a region's strand is the higher f",
                      "sites": f"FIMO statistics, uniform background, p <= {settings.p_value}"}},
            indent=1) + "\n")
        state.unlink(missing_ok=True)
    return results


def _motifs(decode_dir, layer: int, neuron: int) -> list[Motif]:
    from .validation import neuron_motifs

    if decode_dir is None or not layer_dir(decode_dir, layer).is_dir():
        return []
    return neuron_motifs(decode_dir, layer, neuron)


def write_layer_scan(scan_dir: Path, scans: Sequence[NeuronScan], receptive: int,
                     settings: ScanConfig) -> None:
    """Every neuron's files and the layer's summary.tsv (see the module docstring)."""
    from .plots import line_plot_svg, standalone_logo_svg

    lines = ["neuron\tregions\tbest_f\tlast_f\tmotifs\tbest_in_window"]
    for ns in scans:
        stem = scan_dir / f"neuron{ns.neuron}"
        tag = neuron_tag(ns.layer, ns.neuron)
        write_text(f"{stem}.bed", "".join(
            f"{r.chrom}\t{r.start}\t{r.end}\t{tag}_{k + 1}\t{r.score:.5g}\t{r.strand}\n"
            for k, r in enumerate(ns.regions)))
        write_text(f"{stem}_logo.svg", standalone_logo_svg(
            ns.ppm, f"{tag}: top {len(ns.regions)} regions, activation-weighted"))
        rows = ["offset\tmotif\tname\tsame_strand\topposite_strand"]
        for p in ns.profiles:
            rows += [f"{o}\t{p.motif}\t{p.name}\t{a}\t{b}"
                     for o, a, b in zip(p.offsets, p.same, p.opposite)]
        write_text(f"{stem}_motifs.tsv", "\n".join(rows) + "\n")
        if ns.profiles:
            write_text(f"{stem}_motifs.svg", line_plot_svg(
                ns.profiles[0].offsets, [(p.name, p.same + p.opposite) for p in ns.profiles],
                f"{tag}: motif sites around its top {len(ns.regions)} regions "
                f"(p <= {settings.p_value:g})", "offset from region centre (bp)", "sites",
                [(-(receptive // 2), "window"), (receptive - receptive // 2, "")]))
        scores = [r.score for r in ns.regions]
        best = max((p.in_window for p in ns.profiles), default=float("nan"))
        lines.append(f"{ns.neuron}\t{len(scores)}\t{max(scores, default=float('nan')):.5g}\t"
                     f"{min(scores, default=float('nan')):.5g}\t{len(ns.profiles)}\t{best:.3f}")
        write_text(f"{stem}.json", json.dumps({
            "layer": ns.layer, "neuron": ns.neuron, "receptive_field": receptive,
            "regions": len(ns.regions), "top": settings.top, "scores": scores,
            "ppm": np.round(ns.ppm, 4).tolist(), "p_value": settings.p_value,
            "motifs": [{"motif": p.motif, "name": p.name, "in_window": p.in_window,
                        "first_offset": int(p.offsets[0]) if len(p.offsets) else 0,
                        "same_strand": p.same.tolist(), "opposite_strand": p.opposite.tolist()}
                       for p in ns.profiles]}) + "\n")
    write_text(scan_dir / "summary.tsv", "\n".join(lines) + "\n")


def activation_tracks(net: Network, sequences: dict[str, np.ndarray],
                      intervals: Sequence[Interval], layer: int,
                      neurons: Sequence[int] | None = None, settings: ScanConfig = ScanConfig()
                      ) -> list[np.ndarray]:
    """f of `neurons` of `layer` at every window start of every interval, both strands: per
    interval an array (length - N + 1, neurons, 2) (strand +, -), NaN where not scored (N
    bases). Holds everything in memory: for long genomes use `scan` (top regions only)."""
    chans = tuple(net.neurons_of(layer, neurons))
    shape = scan_shape(net, [layer], [chans], settings.chunk, settings.batch)
    program = scan_program(net.config, shape, tracks=True)
    n = net.receptive_field(layer)
    tracks = [np.full((max(iv.length - n + 1, 0), len(chans), 2), np.nan, np.float32)
              for iv in intervals]
    stream = Stream.of(intervals)
    lengths = np.array([len(t) for t in tracks])
    for codes, first in chunk_batches(sequences, stream, shape):
        plus, minus = (np.asarray(a) for a in program(net.params, codes)[layer][3:])
        for row in np.flatnonzero(first >= 0):
            owner, start = stream.locate(first[row] + np.arange(shape.window))
            ok = start < lengths[owner]     # not the N after an interval, nor its last N - 1
            for o in np.unique(owner[ok]):
                at = ok & (owner == o)
                tracks[o][start[at]] = np.stack([plus[row, at], minus[row, at]], -1)
    return tracks
