"""DNA sequence input for scanning: FASTA (plain or gzipped), BED intervals on a genome FASTA.

Sequences are held as uint8 base codes, 0-3 = A, C, G, T and 4 = N. Soft-masked (lowercase)
bases are read as the uppercase base. Any letter other than ACGTN (either case) is an error
naming the file, record and position: IUPAC ambiguity codes are not silently read as N.
"""
from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import NmjaxError

N_CODE = 4
_CODES = np.full(256, 255, np.uint8)
for _i, _b in enumerate("ACGTN"):
    _CODES[ord(_b)] = _CODES[ord(_b.lower())] = _i
_COMPLEMENT = np.array([3, 2, 1, 0, 4], np.uint8)


@dataclass(frozen=True)
class Interval:
    """A region to scan: [start, end) of sequence `chrom` (0-based, end exclusive)."""

    chrom: str
    start: int
    end: int
    name: str = ""

    @property
    def length(self) -> int:
        return self.end - self.start


def _open_text(path: Path, what: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
        return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    except FileNotFoundError:
        raise NmjaxError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise NmjaxError(f"{what} {path} is a directory, not a file") from None
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise NmjaxError(f"cannot read {what} {path}: {e}") from None


def encode(text: bytes | str, where: str = "sequence") -> np.ndarray:
    """Base codes of a DNA string (ACGTN, any case); a clear error at the first other letter."""
    raw = np.frombuffer(text.encode() if isinstance(text, str) else text, np.uint8)
    codes = _CODES[raw]
    bad = np.flatnonzero(codes == 255)
    if len(bad):
        letter = chr(raw[bad[0]])
        raise NmjaxError(f"{where}: letter {letter!r} at position {bad[0] + 1} is not A, C, G, T "
                         f"or N ({len(bad)} such letters); replace ambiguity codes by N")
    return codes


def read_fasta(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every record of a FASTA file (plain or gzipped) as base codes, in file order.

    The record name is the first word of its header line. An empty file, a record without
    bases, a repeated name or a letter other than ACGTN is an NmjaxError naming it.
    """
    path = Path(path)
    data = _open_text(path, "FASTA file")
    if not data.strip():
        raise NmjaxError(f"FASTA file {path} is empty")
    if not data.lstrip().startswith(b">"):
        raise NmjaxError(f"{path} is not a FASTA file: the first line must start with '>'")
    records: dict[str, np.ndarray] = {}
    for block in data.lstrip()[1:].split(b"\n>"):
        header, _, body = block.partition(b"\n")
        name = header.decode(errors="replace").split()[0] if header.split() else ""
        if not name:
            raise NmjaxError(f"{path}: a FASTA header line has no name")
        if name in records:
            raise NmjaxError(f"{path}: record {name!r} appears twice")
        bases = b"".join(body.split())
        if not bases:
            raise NmjaxError(f"{path}: record {name!r} has no bases (empty sequence)")
        records[name] = encode(bases, f"{path}: record {name!r}")
    return records


def write_fasta(path: str | os.PathLike, records: dict[str, np.ndarray | str],
                width: int = 60) -> None:
    """Write records (base codes or strings) as FASTA, atomically (gzipped if path ends .gz)."""
    from .fileio import atomic_path

    lines = []
    for name, seq in records.items():
        text = seq if isinstance(seq, str) else decode(seq)
        lines.append(f">{name}")
        lines += [text[i:i + width] for i in range(0, len(text), width)]
    data = ("\n".join(lines) + "\n").encode()
    with atomic_path(path) as tmp:
        tmp.write_bytes(gzip.compress(data, mtime=0) if str(path).endswith(".gz") else data)


def decode(codes: np.ndarray) -> str:
    """The ACGTN string of base codes."""
    return np.frombuffer(b"ACGTN", np.uint8)[np.asarray(codes)].tobytes().decode()


def reverse_complement(codes: np.ndarray) -> np.ndarray:
    """Reverse complement of base codes along the last axis (N stays N)."""
    return _COMPLEMENT[np.asarray(codes)[..., ::-1]]


def read_bed(path: str | os.PathLike, genome: dict[str, np.ndarray],
             genome_path: str | os.PathLike = "the genome") -> list[Interval]:
    """BED intervals (first 3 columns, optional name) checked against the genome's sequences.

    Header, track, browser and '#' lines are skipped. An interval on a sequence the genome
    lacks, past its end, empty or reversed is an NmjaxError naming the line.
    """
    path = Path(path)
    text = _open_text(path, "BED file").decode(errors="replace")
    intervals = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split("\t") if "\t" in line else line.split()
        if not fields or fields[0].startswith(("#", "track", "browser")):
            continue
        where = f"{path}: line {number}"
        try:
            chrom, start, end = fields[0], int(fields[1]), int(fields[2])
        except (IndexError, ValueError):
            raise NmjaxError(f"{where}: expected 'chrom start end' with integer start and end, "
                             f"got {line.strip()!r}") from None
        if chrom not in genome:
            raise NmjaxError(f"{where}: sequence {chrom!r} is not in {genome_path} (it has "
                             f"{', '.join(list(genome)[:5])}{', ...' if len(genome) > 5 else ''})")
        if not 0 <= start < end:
            raise NmjaxError(f"{where}: interval {chrom}:{start}-{end} is empty or reversed")
        if end > len(genome[chrom]):
            raise NmjaxError(f"{where}: interval {chrom}:{start}-{end} runs past the end of "
                             f"{chrom} ({len(genome[chrom])} bp in {genome_path})")
        name = fields[3] if len(fields) > 3 else f"{chrom}:{start}-{end}"
        intervals.append(Interval(chrom, start, end, name))
    if not intervals:
        raise NmjaxError(f"BED file {path} holds no intervals")
    return intervals


def whole_records(sequences: dict[str, np.ndarray]) -> list[Interval]:
    """One interval per sequence, covering it (FASTA input)."""
    return [Interval(name, 0, len(seq), name) for name, seq in sequences.items()]


def extract(sequences: dict[str, np.ndarray], chrom: str, start: int, end: int) -> np.ndarray:
    """Bases [start, end) of `chrom`, N where the range runs past either end of the sequence."""
    seq = sequences[chrom]
    out = np.full(end - start, N_CODE, np.uint8)
    lo, hi = max(start, 0), min(end, len(seq))
    if hi > lo:
        out[lo - start:hi - start] = seq[lo:hi]
    return out
