"""Diagnostics and the HTML report, checked in a real headless browser (Debian's chromium)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from fake_decode import write_fake_decode
from nmjax.cli import main
from nmjax.diagnose import diagnose_layer, summary_text
from nmjax.logo import COLOURS, GLYPH_DEFS, GLYPHS, logo_svg
from nmjax.matching import Match, read_matches
from nmjax.report import tf_groups, finish_run

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--enable-logging=stderr", "--v=0")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = write_fake_decode(tmp_path_factory.mktemp("decode"))
    return out, finish_run(out)


def chromium(url: str, tmp_path, *args: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Load `url` in headless chromium; returns the process and its console-message lines."""
    exe = shutil.which("chromium")
    assert exe, ("the browser test needs Debian's chromium: "
                 "apt-get install -y --no-install-recommends chromium")
    profile = tempfile.mkdtemp(dir=tmp_path, prefix="chromium-profile-")
    proc = subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, url],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc, [line for line in proc.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def test_diagnose_counts(run):
    out, _ = run
    d = json.loads((out / "diagnose.json").read_text())
    assert d["layers"]["2"]["counts"] == {"alive": 3, "sick": 1, "dead": 1}
    assert d["layers"]["1"]["counts"] == {"alive": 1, "sick": 0, "dead": 1}
    by_neuron = {n["neuron"]: n for n in d["layers"]["2"]["neurons"]}
    assert by_neuron[4]["status"] == "sick" and by_neuron[4]["ratio"] == pytest.approx(0.2, abs=1e-3)
    assert by_neuron[3]["status"] == "dead" and by_neuron[3]["act"] is None
    assert by_neuron[1]["motifs"] == 10 and by_neuron[1]["subsets"] == 5
    assert len(d["layers"]["2"]["scatter"]) == 4 + 5 + 6 + 1
    assert "    2        5      3     1     1" in summary_text(d)


def test_weak_neuron_is_sick(tmp_path):
    layer = tmp_path / "layer1"
    layer.mkdir()
    (layer / "neurons.tsv").write_text("neuron\tsubset\tn\tact\tconact\tconsensus\n"
                                       "0\t0\t100\t10\t9\tACGT\n1\t0\t100\t12\t11\tACGT\n"
                                       "2\t0\t100\t0.5\t0.5\tACGT\n")
    status = [n["status"] for n in diagnose_layer(layer)["neurons"]]
    assert status == ["alive", "alive", "sick"]   # 0.5 < 0.1 x median act 10


def test_all_dead_layer(tmp_path):
    out = write_fake_decode(tmp_path / "dead", plan={1: (12, {0: None, 1: None})})
    assert "MOTIF" not in (out / "layer1" / "ppms.meme").read_text()
    finish_run(out)
    assert json.loads((out / "diagnose.json").read_text())["layers"]["1"]["counts"]["dead"] == 2
    assert (out / "layer1" / "matches.tsv").read_text().count("\n") == 1     # header only
    assert "2 dead" in (out / "report" / "index.html").read_text()


def test_logo_letter_heights():
    svg = logo_svg(np.array([[1.0, 0, 0, 0], [0.25, 0.25, 0.25, 0.25]]), column_width=10, height=50)
    ET.fromstring(svg)
    glyphs = re.findall(r'<use href="#nmjax-(\w)" transform="translate\(([\d.]+) ([\d.]+)\) '
                        r'scale\(([\d.]+) ([\d.]+)\)', svg)
    # one A of full height (2 bits) in column 0; the uniform column carries no letter
    assert glyphs == [("A", "0.0", "0.00", "0.100", "0.5000")]
    assert f'id="nmjax-A" d="{GLYPHS["A"]}" fill="{COLOURS["A"]}"' in GLYPH_DEFS


def test_report_pages(run):
    out, analysis = run
    report = out / "report"
    assert analysis["report"] == str(report / "index.html")
    pages = sorted(p.relative_to(report).as_posix() for p in report.rglob("*.html"))
    assert pages == ["hits.html", "index.html", "layer1/neuron0.html", "layer2/neuron0.html",
                     "layer2/neuron1.html", "layer2/neuron2.html", "layer2/neuron4.html"]
    index = (report / "index.html").read_text()
    for text in ("CTCF-6N-CEBPB", "NFIX-[10-20N]-NFIX", "MA0139.2 CTCF", "3 alive", "1 sick", "1 dead"):
        assert text in index
    for page in report.rglob("*.html"):
        html = page.read_text()
        assert not re.search(r"<link|src=|https?://(?!www\.w3\.org/2000/svg)|url\(", html), page
        for svg in re.findall(r"<svg.*?</svg>", html, flags=re.S):
            ET.fromstring(svg)
    neuron = (report / "layer2" / "neuron1.html").read_text()
    assert neuron.count('<svg xmlns="http://www.w3.org/2000/svg" class="logo"') == 5 + 2
    hits = (report / "hits.html").read_text()
    assert hits.count("<tr><td>") == sum(m.q_value < 0.1 for layer in (1, 2)
                                         for m in read_matches(out / f"layer{layer}" / "matches.tsv"))


def test_pages_load_in_chromium_without_console_errors(run, tmp_path):
    out, _ = run
    report = out / "report"
    for page, size in (("index.html", "1200,1600"), ("layer2/neuron1.html", "1200,1800")):
        png = tmp_path / (page.replace("/", "_") + ".png")
        _, console = chromium(f"file://{report / page}", tmp_path, f"--screenshot={png}",
                              f"--window-size={size}")
        assert console == []
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    # the hits table filters by TF name (preset through the URL) once its script has run
    proc, console = chromium(f"file://{report / 'hits.html'}#tf=ctcf&q=0.01", tmp_path, "--dump-dom")
    assert console == []
    expected = sum(m.q_value <= 0.01 and "CTCF" in m.target_name.upper()
                   for layer in (1, 2) for m in read_matches(out / f"layer{layer}" / "matches.tsv"))
    assert expected > 0
    assert re.search(r'<span id="count">(\d+)</span>', proc.stdout).group(1) == str(expected)
    # sorting: column 7 (q) ascending, preset through the URL
    proc, console = chromium(f"file://{report / 'hits.html'}#q=1&sort=7", tmp_path, "--dump-dom")
    assert console == []
    rows = re.findall(r"<tr[^>]*><td>\d+</td>(.*?)</tr>", proc.stdout)
    q_column = [float(re.findall(r"<td>(.*?)</td>", r)[6]) for r in rows]
    assert len(q_column) == (report / "hits.html").read_text().count("<tr><td>")
    assert q_column == sorted(q_column) and q_column != [float(x) for x in re.findall(
        r"<tr><td>\d+</td>(?:<td>.*?</td>){6}<td>(.*?)</td>", (report / "hits.html").read_text())]


def test_browser_check_sees_script_errors(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><body><script>notDefined();</script></body></html>")
    _, console = chromium(f"file://{page}", tmp_path, "--dump-dom")
    assert any("Uncaught ReferenceError" in line for line in console)


def test_cli_commands(run, capsys):
    out, _ = run
    assert main(["diagnose", str(out)]) == 0
    assert "sick =" in capsys.readouterr().out
    assert main(["report", str(out), "--no-match"]) == 0
    assert "report/index.html" in capsys.readouterr().out
    assert main(["match", str(out / "missing")]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_front_page_leads_with_the_grammars(run):
    out, _ = run
    index = (out / "report" / "index.html").read_text()
    first = index[:index.index("<h2>Run</h2>")]
    headline = first[first.index("<h2>Grammars the model encodes</h2>"):first.index("</ul>")]
    items = re.findall(r'<li><b class="grammar">(.*?)</b> \((.*?)\)</li>', headline)
    assert [t for t, _ in items] == ["CTCF-6N-CEBPB", "NFIX-[10-20N]-NFIX"]
    assert items[0][1].startswith('layer 2: neuron <a href="layer2/neuron1.html">1</a> (')
    assert re.fullmatch(r".*</a> \(\d+%\)", items[0][1])       # the weight it holds there
    # per layer, its grammars with a logo, then its motifs ranked by neurons carrying them
    layer2 = first[first.index("<h3>Layer 2</h3>"):first.index("<h3>Layer 1</h3>")]
    grammar_rows = re.findall(r"<tr><td><code>(.*?)</code></td><td>(<svg.*?</svg>)</td>", layer2)
    assert [t for t, _ in grammar_rows] == ["CTCF-6N-CEBPB", "NFIX-[10-20N]-NFIX"]
    motif_rows = re.findall(r"<tr><td><b>(.*?)</b></td>", layer2)
    assert motif_rows[0] == "CTCF" and set(motif_rows) == {"CTCF", "CEBPB", "NFIX"}


def test_tfs_matched_column_joins_paralog_ties():
    def match(query, tf, p):
        return Match(query, "MA0", tf, p, p, p, 0, "+", 10, 10, 10)

    found = [match("L4_N20_S0_1-11", "CEBPE", 1.7e-8), match("L4_N20_S0_1-11", "CEBPB", 2.0e-8),
             match("L4_N20_S0_1-11", "CEBPA", 1e-6), match("L4_N20_S1_3-14", "CTCF", 1e-7),
             match("L4_N20_S2_0-10", "CEBPB", 3e-8), match("L4_N20_S2_0-10", "CEBPE", 3.1e-8),
             match("L4_N20_S3_0-10", "CEBPE", 4e-8), match("L4_N20_S4_0-10", "CEBPG", 5e-8)]
    # S2 and S3 add no TF beyond CEBPB/CEBPE; S4 adds CEBPG
    assert tf_groups(found) == ["CEBPB/CEBPE", "CEBPG", "CTCF"]
