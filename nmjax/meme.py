"""MEME minimal motif format: read and write letter-probability matrices (ACGT)."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .errors import NmjaxError
from .fileio import write_text

ALPHABET = "ACGT"


@dataclass(frozen=True)
class Motif:
    """A named position probability matrix, shape (length, 4) over ACGT."""

    name: str
    ppm: np.ndarray
    nsites: int = 20
    alt_name: str = ""


def format_meme(motifs: list[Motif]) -> str:
    """Render motifs as a MEME minimal-format text."""
    lines = ["MEME version 4", "", f"ALPHABET= {ALPHABET}", "", "strands: + -", "",
             "Background letter frequencies", "A 0.25 C 0.25 G 0.25 T 0.25", ""]
    for m in motifs:
        ppm = np.asarray(m.ppm, dtype=np.float64)
        lines.append(f"MOTIF {m.name}" + (f" {m.alt_name}" if m.alt_name else ""))
        lines.append(f"letter-probability matrix: alength= 4 w= {ppm.shape[0]} "
                     f"nsites= {int(m.nsites)} E= 0")
        lines.extend(" ".join(f"{p:.6f}" for p in row) for row in ppm)
        lines.append("")
    return "\n".join(lines)


def write_meme(path: str | os.PathLike, motifs: list[Motif]) -> None:
    """Write motifs to `path` in MEME minimal format, atomically."""
    write_text(path, format_meme(motifs))


def read_meme(path: str | os.PathLike) -> list[Motif]:
    """Read every motif of a MEME (minimal or full) file over the DNA alphabet."""
    try:
        lines = open(path).read().splitlines()
    except OSError as e:
        raise NmjaxError(f"cannot read motif file {path}: {e.strerror}") from e
    motifs, i = [], 0
    while i < len(lines):
        if not lines[i].startswith("MOTIF"):
            i += 1
            continue
        parts = lines[i].split()
        if len(parts) < 2:
            raise NmjaxError(f"{path}: line {i + 1}: MOTIF without a name")
        name, alt = parts[1], " ".join(parts[2:])
        i += 1
        while i < len(lines) and not lines[i].startswith("letter-probability"):
            if lines[i].startswith("MOTIF"):
                raise NmjaxError(f"{path}: motif {name} has no letter-probability matrix")
            i += 1
        if i == len(lines):
            raise NmjaxError(f"{path}: motif {name} has no letter-probability matrix")
        header = lines[i].replace("=", " = ").split()
        fields = {header[j - 1]: header[j + 1] for j, t in enumerate(header) if t == "="}
        width = int(fields.get("w", 0))
        nsites = int(float(fields.get("nsites", 20)))
        rows = []
        i += 1
        while i < len(lines) and (width == 0 or len(rows) < width):
            vals = lines[i].split()
            if not vals:
                if width == 0 and rows:
                    break
                i += 1
                continue
            try:
                rows.append([float(v) for v in vals])
            except ValueError:
                if width == 0:
                    break
                raise NmjaxError(f"{path}: line {i + 1}: bad matrix row in motif {name}")
            i += 1
        ppm = np.array(rows, dtype=np.float64)
        if ppm.ndim != 2 or ppm.shape[1] != 4 or len(ppm) == 0:
            raise NmjaxError(f"{path}: motif {name} is not a (width, 4) ACGT matrix")
        motifs.append(Motif(name, ppm / ppm.sum(1, keepdims=True), nsites, alt))
    if not motifs:
        raise NmjaxError(f"{path}: no MOTIF entries found; is this a MEME motif file?")
    return motifs
