"""Model readers: trained Keras files -> nmjax `Network` (no TensorFlow or Keras needed)."""
