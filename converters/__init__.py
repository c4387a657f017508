"""Model readers: trained Keras files -> nmjax `Network` (no TensorFlow or Keras needed)."""
from __future__ import annotations

import os


def read_model(path: str | os.PathLike, architecture: str | os.PathLike | None = None):
    """`converters.keras.read_model`: a Keras 2/3 model file, a weights-only HDF5 file plus its
    architecture, or an nmjax checkpoint. Imported on call, so that `python -m converters.keras`
    runs that module once."""
    from .keras import read_model as read

    return read(path, architecture)


__all__ = ["read_model"]
