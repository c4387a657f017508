"""Motif databases: JASPAR CORE offline through pyJASPAR, or any MEME-format file.

JASPAR: Rauluseviciute et al., NAR 2024 (and earlier releases); pyJASPAR: Khan, A. (2021),
https://github.com/asntech/pyjaspar, which ships the JASPAR 2014-2026 SQLite databases.
"""
from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path

import numpy as np

from .errors import NmjaxError
from .fileio import atomic_path
from .meme import Motif, read_meme

DEFAULT_RELEASE = "JASPAR2026"


def jaspar_releases() -> list[str]:
    from pyjaspar import jaspardb

    return sorted(jaspardb().get_releases())


def cache_dir() -> Path:
    """Where nmjax keeps what it can rebuild: $NMJAX_CACHE, else $XDG_CACHE_HOME/nmjax, else
    ~/.cache/nmjax."""
    if os.environ.get("NMJAX_CACHE"):
        return Path(os.environ["NMJAX_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nmjax"


@functools.lru_cache(maxsize=8)
def jaspar_motifs(release: str = DEFAULT_RELEASE, tax_group: str = "vertebrates",
                  collection: str = "CORE") -> tuple[Motif, ...]:
    """Latest version of every JASPAR matrix of a collection and taxonomic group, as PPMs.

    Motif names are matrix IDs (MA0139.2); `alt_name` is the TF name (CTCF). pyJASPAR reads
    them from its SQLite file one query at a time (10-50 s); the counts are kept in
    `cache_dir()` as an exact .npz copy and read from there by later runs.
    """
    cache = cache_dir() / "jaspar" / f"{release}_{collection}_{tax_group}.npz"
    if cache.is_file():
        with np.load(cache) as d:
            counts = np.split(d["counts"], np.cumsum(d["lengths"])[:-1])
            return tuple(_motif(i, c, n) for i, c, n in zip(d["ids"], counts, d["names"]))
    from pyjaspar import jaspardb

    releases = jaspar_releases()
    if release not in releases:
        raise NmjaxError(f"unknown JASPAR release {release!r}; available: {', '.join(releases)}")
    rows = [(m.matrix_id, np.array([m.counts[b] for b in "ACGT"], dtype=np.float64).T, m.name)
            for m in jaspardb(release=release).fetch_motifs(collection=collection,
                                                               tax_group=[tax_group])]
    with contextlib.suppress(OSError):   # no cache where the folder cannot be written
        with atomic_path(cache) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, ids=np.array([r[0] for r in rows]), names=np.array([r[2] for r in rows]),
                     lengths=np.array([len(r[1]) for r in rows]),
                     counts=np.concatenate([r[1] for r in rows]))
    return tuple(_motif(*r) for r in rows)


def _motif(matrix_id: str, counts: np.ndarray, name: str) -> Motif:
    return Motif(str(matrix_id), counts / counts.sum(1, keepdims=True),
                 int(round(counts.sum(1).max())), str(name))


def jaspar_motif(tf_or_id: str, release: str = DEFAULT_RELEASE) -> Motif:
    """One JASPAR CORE vertebrate motif by matrix ID (MA0139.2) or TF name (CTCF, exact)."""
    motifs = jaspar_motifs(release)
    hits = [m for m in motifs if m.name == tf_or_id] or \
           [m for m in motifs if m.alt_name.upper() == tf_or_id.upper()]
    if not hits:
        raise NmjaxError(f"no JASPAR {release} CORE vertebrate motif named {tf_or_id!r}")
    return hits[0]


def load_motif_db(path: str | os.PathLike | None = None, release: str = DEFAULT_RELEASE
                  ) -> tuple[Motif, ...]:
    """A MEME file's motifs if `path` is given, else JASPAR CORE vertebrates of `release`."""
    return tuple(read_meme(path)) if path else jaspar_motifs(release)
