"""Model readers: trained Keras files -> nmjax `Network` (no TensorFlow or Keras needed)."""
from .keras import read_model

__all__ = ["read_model"]
