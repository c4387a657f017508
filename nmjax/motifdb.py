"""Motif databases: JASPAR CORE offline through pyJASPAR, or any MEME-format file.

JASPAR: Rauluseviciute et al., NAR 2024 (and earlier releases); pyJASPAR: Khan, A. (2021),
https://github.com/asntech/pyjaspar, which ships the JASPAR 2014-2026 SQLite databases.
"""
from __future__ import annotations

import functools
import os

import numpy as np

from .errors import NmjaxError
from .meme import Motif, read_meme

DEFAULT_RELEASE = "JASPAR2026"


def jaspar_releases() -> list[str]:
    from pyjaspar import jaspardb

    return sorted(jaspardb().get_releases())


@functools.lru_cache(maxsize=8)
def jaspar_motifs(release: str = DEFAULT_RELEASE, tax_group: str = "vertebrates",
                  collection: str = "CORE") -> tuple[Motif, ...]:
    """Latest version of every JASPAR matrix of a collection and taxonomic group, as PPMs.

    Motif names are matrix IDs (MA0139.2); `alt_name` is the TF name (CTCF).
    """
    from pyjaspar import jaspardb

    releases = jaspar_releases()
    if release not in releases:
        raise NmjaxError(f"unknown JASPAR release {release!r}; available: {', '.join(releases)}")
    db = jaspardb(release=release)
    out = []
    for m in db.fetch_motifs(collection=collection, tax_group=[tax_group]):
        counts = np.array([m.counts[b] for b in "ACGT"], dtype=np.float64).T
        out.append(Motif(m.matrix_id, counts / counts.sum(1, keepdims=True),
                         int(round(counts.sum(1).max())), m.name))
    return tuple(out)


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
