"""`nmjax scan` on the bundled example and sequences made by `nmjax simulate`."""
from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nmjax.cli import main
from nmjax.motifdb import jaspar_motif
from nmjax.probe import probe
from nmjax.scan import ScanConfig, activation_tracks, load_sequences, scan
from nmjax.sequences import Interval, read_fasta, reverse_complement

from simulated_genome import CTCF, simulated_sequences, write_genome, write_records

REPO = Path(__file__).parents[1]
scan_module = importlib.import_module("nmjax.scan")  # the package attribute is the function
TOP = 40


@pytest.fixture(scope="module")
def net(example_net):
    return example_net


@pytest.fixture(scope="module")
def sim():
    return simulated_sequences(300)


@pytest.fixture(scope="module")
def files(sim, tmp_path_factory):
    d = tmp_path_factory.mktemp("seqs")
    records = write_records(d / "records.fa.gz", sim)
    genome = write_genome(d / "genome.fa", sim, per_chrom=150)
    (d / "intervals.bed").write_text("".join(f"chr{i // 150 + 1}\t{i % 150 * 200}\t"
                                             f"{i % 150 * 200 + 200}\tseq{i}\n"
                                             for i in range(len(sim.codes))))
    return {"records": records, "genome": genome, "bed": d / "intervals.bed"}


@pytest.fixture(scope="module")
def ctcf_neuron(net):
    """The layer-3 neuron that an inserted CTCF site raises most (`nmjax probe`)."""
    rows = probe(net, [jaspar_motif(CTCF)], layers=[3], samples=300)
    best = max(rows, key=lambda r: r.gain)
    assert best.gain > 0.5
    return best.neuron


@pytest.fixture(scope="module")
def motif_dir(tmp_path_factory, ctcf_neuron):
    """A grammar.json whose dictionary for the neuron holds JASPAR CTCF and MEF2C (a planted
    motif of another task), in the format `nmjax grammar` writes."""
    d = tmp_path_factory.mktemp("decode")
    (d / "layer3").mkdir()
    dictionary = [{"id": f"D{k + 1}", "name": name, "ppm": jaspar_motif(m).ppm.tolist(),
                   "match": {"target": m, "target_name": name}}
                  for k, (m, name) in enumerate([(CTCF, "CTCF"), ("MA0497.2", "MEF2C")])]
    (d / "layer3" / "grammar.json").write_text(json.dumps(
        {"neurons": {str(ctcf_neuron): {"dictionary": dictionary}}}))
    return d


@pytest.fixture(scope="module")
def record_scan(net, files, ctcf_neuron, motif_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("scan")
    result = scan(net, files["records"], layers=[3], neurons=[ctcf_neuron],
                  settings=ScanConfig(top=TOP, extend=200), out=out, decode_dir=motif_dir)
    return out, result[3][0]


def _overlaps(sites, start, end):
    return any(a < end and start < b for a, b in sites)


def test_every_window_is_scored_once_on_both_strands(net):
    """Tracks equal the network's own f on each window (and its reverse complement), across
    chunk boundaries; windows holding N are NaN."""
    rng = np.random.default_rng(0)
    seqs = {"a": rng.integers(0, 4, 700).astype(np.uint8), "b": rng.integers(0, 4, 150).astype(np.uint8)}
    seqs["a"][400] = 4
    intervals = [Interval("a", 0, 700, "a"), Interval("b", 10, 150, "b")]
    layer, n = 5, net.receptive_field(5)
    tracks = activation_tracks(net, seqs, intervals, layer, settings=ScanConfig(chunk=1, batch=2))
    eye = np.eye(4, dtype=np.float32)
    for iv, track in zip(intervals, tracks):
        assert track.shape == (iv.length - n + 1, net.channels(layer), 2)
        bases = seqs[iv.chrom][iv.start:iv.end]
        starts = [s for s in range(len(track)) if (bases[s:s + n] < 4).all()]
        windows = np.stack([bases[s:s + n] for s in starts])
        for strand, w in ((0, windows), (1, reverse_complement(windows))):
            want = np.asarray(net.conv_output(eye[w], layer))[:, 0]
            np.testing.assert_allclose(track[starts, :, strand], want, atol=2e-4)
        masked = sorted(set(range(len(track))) - set(starts))
        assert masked == ([] if iv.chrom == "b" else list(range(400 - n + 1, 401)))
        assert np.isnan(track[masked]).all()


def test_fasta_reading_gzip_soft_masking(files, sim):
    seqs = read_fasta(files["records"])
    assert len(seqs) == len(sim.codes)
    np.testing.assert_array_equal(seqs["seq0"], sim.codes[0])     # lowercase record
    assert (seqs["seq5"][100:110] == 4).all()
    np.testing.assert_array_equal(seqs["seq200"], sim.codes[200])


def test_ctcf_neuron_top_regions_sit_on_planted_ctcf_sites(record_scan, sim):
    out, ns = record_scan
    ctcf = sim.sites[CTCF]
    hits = [_overlaps(ctcf[int(r.chrom[3:])], r.start, r.end) for r in ns.regions]
    n = ns.regions[0].end - ns.regions[0].start
    # chance: a random window of the same length overlaps a planted CTCF site
    chance = np.mean([_overlaps(ctcf[i], s, s + n) for i in range(len(sim.codes))
                      for s in range(0, 200 - n + 1)])
    assert len(ns.regions) == TOP
    assert np.mean(hits) >= 0.75 and np.mean(hits) > 3 * chance, (np.mean(hits), chance)
    scores = [r.score for r in ns.regions]
    assert scores == sorted(scores, reverse=True)
    bed = (out / "layer3" / "scan" / f"neuron{ns.neuron}.bed").read_text().splitlines()
    chrom, start, end, name, score, strand = bed[0].split("\t")
    assert (chrom, int(start), int(end), strand) == (ns.regions[0].chrom, ns.regions[0].start,
                                                    ns.regions[0].end, ns.regions[0].strand)
    assert len(bed) == TOP and name == f"L3_N{ns.neuron}_1"


def test_motif_profiles_peak_inside_the_window(record_scan):
    out, ns = record_scan
    prof = {p.name: p for p in ns.profiles}
    assert set(prof) == {"CTCF", "MEF2C"}
    ctcf, mef2c = prof["CTCF"], prof["MEF2C"]
    assert ctcf.in_window >= 0.6 and ctcf.in_window > 3 * mef2c.in_window
    counts = ctcf.same + ctcf.opposite
    peak = ctcf.offsets[np.argmax(counts)]
    assert abs(peak) <= 11                        # within the 22 bp receptive field
    assert counts[np.abs(ctcf.offsets) <= 11].sum() > 0.5 * counts.sum()
    # reads on the region's strand: the neuron's CTCF has one orientation
    assert max(ctcf.same.sum(), ctcf.opposite.sum()) > 2 * min(ctcf.same.sum(), ctcf.opposite.sum())
    files = {p.name for p in (out / "layer3" / "scan").iterdir()}
    stem = f"neuron{ns.neuron}"
    assert {f"{stem}.bed", f"{stem}.json", f"{stem}_logo.svg", f"{stem}_motifs.tsv",
            f"{stem}_motifs.svg", "summary.tsv"} <= files
    assert not (out / ".scan-state.npz").exists()


def test_top_regions_hold_no_n_and_do_not_overlap(record_scan, files):
    _, ns = record_scan
    seqs = read_fasta(files["records"])
    by_seq: dict[str, list] = {}
    for r in ns.regions:
        assert (seqs[r.chrom][r.start:r.end] < 4).all()
        for s in by_seq.setdefault(r.chrom, []):
            assert r.end <= s or s + (r.end - r.start) <= r.start
        by_seq[r.chrom].append(r.start)


def test_bed_intervals_on_a_genome_give_the_same_regions_in_genome_coordinates(
        net, files, ctcf_neuron, record_scan):
    """The records file soft-masks and N-masks some records, so compare the other records."""
    _, by_record = record_scan
    result = scan(net, bed=files["bed"], genome=files["genome"], layers=[3],
                  neurons=[ctcf_neuron], settings=ScanConfig(top=TOP, extend=200))[3][0]
    for a in by_record.regions:
        i = int(a.chrom[3:])
        if i == 5:
            continue
        b = next(r for r in result.regions if r.source == a.chrom and r.start - i % 150 * 200 == a.start)
        assert b.chrom == f"chr{i // 150 + 1}" and b.strand == a.strand
        assert b.score == pytest.approx(a.score, abs=1e-5)


class Killed(Exception):
    pass


def test_interrupted_scan_resumes_to_the_same_files(net, files, ctcf_neuron, monkeypatch,
                                                    tmp_path):
    settings = ScanConfig(top=10, extend=100, chunk=1, batch=2)
    args = dict(layers=[3, 4], neurons=[ctcf_neuron], settings=settings)
    scan(net, files["records"], out=tmp_path / "whole", **args)
    real = scan_module.scan_program
    calls, kill_at = [], [60]

    def failing(*a, **k):
        program = real(*a, **k)

        def run(*x):
            calls.append(1)
            if len(calls) == kill_at[0]:
                raise Killed
            return program(*x)
        return run

    monkeypatch.setattr(scan_module, "scan_program", failing)
    monkeypatch.setattr(scan_module, "CHECKPOINT_SECONDS", 0.0)
    with pytest.raises(Killed):
        scan(net, files["records"], out=tmp_path / "resumed", **args)
    assert (tmp_path / "resumed" / ".scan-state.npz").is_file()
    assert not (tmp_path / "resumed" / "scan.json").exists()
    calls.clear()
    kill_at[0] = None
    scan(net, files["records"], out=tmp_path / "resumed", **args)
    stream = scan_module.Stream.of(load_sequences(files["records"])[1])
    total = scan_module.batch_count(stream, scan_module.scan_shape(net, [3, 4], [[0], [0]], 1, 2))
    assert len(calls) == total - 59
    for layer in (3, 4):
        for f in (tmp_path / "whole" / f"layer{layer}" / "scan").iterdir():
            assert f.read_bytes() == (tmp_path / "resumed" / f.relative_to(tmp_path / "whole")
                                      ).read_bytes(), f.name


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"),
    (">a\nACGT\n>b\n\n", "record 'b' has no bases"),
    (">a\nACGTRACGT\n", "letter 'R' at position 5"),
    ("", "is empty"),
    ("ACGT\n", "not a FASTA file"),
])
def test_bad_fasta_is_a_named_error_with_nothing_written(content, message, tmp_path, capsys):
    fasta = tmp_path / "in.fa"
    if content is not None:
        fasta.write_text(content)
    out = tmp_path / "out"
    assert main(["scan", "--fasta", str(fasta), "--layers", "3", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and str(fasta) in err
    assert not out.exists()


@pytest.mark.parametrize("bed, message", [
    ("chr1\t29990\t30010\n", "runs past the end of chr1 (30000 bp"),
    ("chr9\t0\t100\n", "sequence 'chr9' is not in"),
    ("chr1\t100\t50\n", "empty or reversed"),
    ("chr1\tten\t50\n", "integer start and end"),
])
def test_bad_bed_is_a_named_error_with_nothing_written(bed, message, files, tmp_path, capsys):
    path = tmp_path / "in.bed"
    path.write_text(bed)
    out = tmp_path / "out"
    code = main(["scan", "--bed", str(path), "--genome", str(files["genome"]), "--layers", "3",
                 "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "line 1" in err
    assert not out.exists()


def test_cli_scan_exit_codes(files, tmp_path):
    """A real process: exit 0 and the files on good input, 2 and nothing on a missing genome."""
    ok = subprocess.run([sys.executable, "-m", "nmjax", "scan", "--fasta", str(files["records"]),
                         "--layers", "2", "--neurons", "0-1", "--top", "5", "--out",
                         str(tmp_path / "ok")], capture_output=True, text=True, cwd=REPO)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "ok" / "layer2" / "scan" / "neuron1.bed").read_text().count("\n") == 5
    bad = subprocess.run([sys.executable, "-m", "nmjax", "scan", "--bed", str(files["bed"]),
                          "--genome", str(tmp_path / "missing.fa"), "--out", str(tmp_path / "bad")],
                         capture_output=True, text=True, cwd=REPO)
    assert bad.returncode == 2 and "missing.fa does not exist" in bad.stderr
    assert not (tmp_path / "bad").exists()


def test_simulated_fasta_and_its_sites_bed(tmp_path):
    import dataclasses

    from nmjax.example import example_tasks_path
    from nmjax.sequences import decode
    from nmjax.simulate import load_config, simulate, write_simulated_fasta

    batch = simulate(dataclasses.replace(load_config(example_tasks_path()), n_test=20), "test")
    bed = write_simulated_fasta(batch, tmp_path / "test.fa.gz")
    assert bed == tmp_path / "test.sites.bed"
    seqs = read_fasta(tmp_path / "test.fa.gz")
    np.testing.assert_array_equal(np.stack(list(seqs.values())), batch.onehot.argmax(-1))
    rows = [line.split("\t") for line in bed.read_text().splitlines()]
    planted = [(i, e, site) for i, events in enumerate(batch.events) for e in events
               for site in e.sites]
    assert len(rows) == len(planted) > 10
    for (name, start, end, motif, task, strand), (i, event, site) in zip(rows, planted):
        assert (name, int(start), int(end), motif, strand) == (f"seq{i}", site.start, site.end,
                                                               site.motif, site.strand)
        assert task == event.task + ("" if event.positive else "(decoy)")
        bases = seqs[name][site.start:site.end]
        assert decode(bases if strand == "+" else reverse_complement(bases)) == site.bases
