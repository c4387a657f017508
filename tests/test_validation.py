"""Window swap (`nmjax swap`), the neuron-motif reader and the report's validation section."""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from nmjax.cli import main
from nmjax.grammar import grammar_run
from nmjax.logo import GLYPH_DEFS
from nmjax.meme import Motif, write_meme
from nmjax.motifdb import jaspar_motif, load_motif_db
from nmjax.scan import ScanConfig, scan
from nmjax.sequences import write_fasta
from nmjax.spacing import spacing_scan, write_spacing
from nmjax.swap import align_shift, window_swap, write_swap
from nmjax.validation import neuron_motifs, validation_section_html

from fake_decode import write_fake_decode
from test_report import chromium

LAYER, NEURON = 3, 31          # a layer-3 neuron of the example that CTCF drives (test_scan)
MUTATED = (8, 13)


@pytest.fixture(scope="module")
def db():
    return load_motif_db()


@pytest.fixture(scope="module")
def net(example_net):
    return example_net


@pytest.fixture(scope="module")
def decode_dir(net, tmp_path_factory):
    """neurons.tsv / ppms.meme of one neuron with a consistent subset (CTCF's consensus in a
    random window) and a sick one (5 core bases changed), act and conact from the network."""
    d = tmp_path_factory.mktemp("decode")
    rng = np.random.default_rng(3)
    ctcf = jaspar_motif("MA0139.2").ppm.argmax(1)
    good = rng.integers(0, 4, net.receptive_field(LAYER))
    good[3:3 + len(ctcf)] = ctcf
    sick = good.copy()
    sick[MUTATED[0]:MUTATED[1]] = (sick[MUTATED[0]:MUTATED[1]] + 2) % 4
    f = np.asarray(net.neuron_values(np.eye(4, dtype=np.float32)[np.stack([sick, good])],
                                     LAYER, NEURON))
    assert f[1] > f[0] + 1.0
    act = 1.05 * f[1]
    rows = ["neuron\tsubset\tn\tact\tconact\tconsensus"] + [
        f"{NEURON}\t{s}\t500\t{act:.5f}\t{v:.5f}\t{''.join('ACGT'[b] for b in seq)}"
        for s, (seq, v) in enumerate(zip((sick, good), f))]
    (d / f"layer{LAYER}").mkdir()
    (d / f"layer{LAYER}" / "neurons.tsv").write_text("\n".join(rows) + "\n")
    write_meme(d / f"layer{LAYER}" / "ppms.meme",
               [Motif(f"L{LAYER}_N{NEURON}_S{s}", 0.8 * np.eye(4)[seq] + 0.05, 500)
                for s, seq in enumerate((sick, good))])
    (d / "run.json").write_text(json.dumps({"model": "bundled example"}))
    return d, f


def test_swap_finds_the_window_that_repairs_the_sick_consensus(net, decode_dir):
    d, (f_sick, f_good) = decode_dir
    result = window_swap(net, d, LAYER, NEURON, window=5)
    assert (result.sick, result.consistent, result.shift) == (0, 1, 0)
    assert result.f_sick == pytest.approx(f_sick, abs=1e-5)
    f = np.array(result.f)
    assert f[result.starts.index(MUTATED[0])] == pytest.approx(f_good, abs=1e-5)  # restored
    best = result.starts[int(np.argmax(f))]
    assert MUTATED[0] - 5 < best < MUTATED[1] and f.max() > f_sick + 1.0
    away = [k for k, p in enumerate(result.starts) if p + 5 <= MUTATED[0] or p >= MUTATED[1]]
    np.testing.assert_allclose(f[away], f_sick, atol=1e-5)     # windows of identical bases
    path = write_swap(d, result)
    lines = path.read_text().splitlines()
    assert lines[0] == "start\tend\tf\tgain" and len(lines) == 1 + len(result.starts)


def test_align_shift_recovers_a_shifted_ppm():
    rng = np.random.default_rng(0)
    ppm = rng.dirichlet(np.full(4, 0.3), size=40)
    assert align_shift(ppm[5:35], ppm[2:32], 4) == 3    # sick column i = consistent i + 3
    assert align_shift(ppm[5:35], ppm[5:35], 4) == 0


def test_swap_cli_and_errors(decode_dir, capsys):
    d, _ = decode_dir
    assert main(["swap", str(d), "--layer", str(LAYER), "--neuron", str(NEURON),
                 "--window", "5"]) == 0
    assert "best swap at" in capsys.readouterr().out
    assert main(["swap", str(d), "--layer", str(LAYER), "--neuron", "7"]) == 2
    assert "neuron 7 has 0 decoupled subset(s)" in capsys.readouterr().err
    assert main(["swap", str(d), "--layer", str(LAYER), "--neuron", str(NEURON),
                 "--window", "51"]) == 2
    assert "must be 1..22" in capsys.readouterr().err


def test_neuron_motifs_from_grammar_dictionary(tmp_path, db):
    out = write_fake_decode(tmp_path)
    grammar_run(out, db=db)
    motifs = neuron_motifs(out, 2, 1)                          # the CTCF-6N-CEBPB neuron
    assert sorted(m.alt_name for m in motifs) == ["CEBPB", "CTCF"]
    assert all(m.name.startswith("L2_N1_D") for m in motifs)
    ctcf = next(m for m in motifs if m.alt_name == "CTCF")
    assert len(ctcf.ppm) == len(jaspar_motif("MA0139.2").ppm)  # in the matrix's frame
    assert neuron_motifs(out, 2, 5) == []


def test_neuron_motifs_fall_back_to_segmented_motifs(tmp_path):
    write_fake_decode(tmp_path)
    motifs = neuron_motifs(tmp_path, 2, 1, max_segments=3)
    assert len(motifs) == 3 and all(m.name.startswith("L2_N1_S") for m in motifs)
    assert len(neuron_motifs(tmp_path, 2, 1)) > 3
    assert neuron_motifs(tmp_path, 2, 3) == []                 # dead neuron


def test_validation_section_inlines_plots_and_links_files(net, decode_dir, tmp_path):
    d, _ = decode_dir
    (d / f"layer{LAYER}" / "grammar.json").write_text(json.dumps({"neurons": {str(NEURON): {
        "dictionary": [{"id": "D1", "name": "CTCF",
                        "ppm": jaspar_motif("MA0139.2").ppm.tolist()}]}}}))
    rng = np.random.default_rng(1)
    write_fasta(tmp_path / "s.fa", {f"r{i}": rng.integers(0, 4, 300).astype(np.uint8)
                                    for i in range(5)})
    scan(net, tmp_path / "s.fa", layers=[LAYER], neurons=[NEURON],
         settings=ScanConfig(top=10, extend=100), out=d)
    write_swap(d, window_swap(net, d, LAYER, NEURON, window=5))
    cebpb = jaspar_motif("MA0466.4")
    write_spacing(d, spacing_scan(net, cebpb, cebpb, LAYER, range(3), samples=20),
                  plots=net.channels(LAYER))
    html = validation_section_html(d, LAYER, NEURON)
    assert html.count("<svg") == 4                             # logo, profiles, swap, spacing
    section = ET.fromstring(html)                              # well-formed, SVG included
    assert len(section.findall(".//{http://www.w3.org/2000/svg}svg")) == 4
    page_dir = d / "report" / f"layer{LAYER}"
    links = re.findall(r'<a href="([^"]+)"', html)
    assert len(links) == 6 and all((page_dir / link).resolve().is_file() for link in links)
    assert validation_section_html(d, 2, 0) == ""                # nothing written for it
    page_dir.mkdir(parents=True)
    page = page_dir / "validation.html"
    page.write_text(f"<!doctype html><html><body>{GLYPH_DEFS}{html}</body></html>")
    png = tmp_path / "page.png"
    _, console = chromium(f"file://{page}", tmp_path, f"--screenshot={png}",
                          "--window-size=900,1400")
    assert console == [] and png.stat().st_size > 10_000
