"""Model readers: trained Keras files -> nmjax `Network` (no TensorFlow or Keras needed)."""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

from nmjax.errors import ModelError
from nmjax.network import Network, load_checkpoint


def _is_checkpoint(path: Path) -> bool:
    """An nmjax checkpoint is an .npz (zip) holding `__config__.npy`."""
    try:
        with zipfile.ZipFile(path) as z:
            return "__config__.npy" in z.namelist()
    except (zipfile.BadZipFile, OSError, EOFError):
        return path.suffix == ".npz"  # damaged checkpoint: let load_checkpoint name the problem


def read_model(path: str | os.PathLike, architecture: str | os.PathLike | None = None) -> Network:
    """Read an nmjax checkpoint (.npz), a Keras 2/3 HDF5 model, a Keras 3 `.keras` archive, or
    a weights-only HDF5 file plus its `model.to_json()` file (`architecture`)."""
    from .keras import read_keras

    path = Path(path)
    if path.is_file() and _is_checkpoint(path):
        if architecture is not None:
            raise ModelError(f"{path}: an nmjax checkpoint carries its architecture; do not "
                             "pass an architecture file with it")
        try:
            return load_checkpoint(path)
        except (zipfile.BadZipFile, EOFError, KeyError) as e:
            raise ModelError(f"{path}: cannot read nmjax checkpoint (corrupt or truncated "
                             f"file?): {e}") from e
    return read_keras(path, architecture)


__all__ = ["read_model"]
