"""nmjax: decode the DNA motifs and motif grammars that the neurons of a genomics CNN encode."""
from __future__ import annotations

import os

from .config import VERSION, DecodeConfig
from .decoder import decode, decode_layer, decode_neuron
from .errors import ModelError, NmjaxError
from .network import ConvSpec, HeadOp, Network, NetworkConfig, receptive_field, shift_multiplicity
from .results import LayerResult, NeuronResult
from .scan import NeuronScan, ScanConfig, activation_tracks, load_sequences, scan
from .sequences import read_fasta
from .spacing import SpacingResult, spacing_scan
from .swap import SwapResult, window_swap
from .validation import neuron_motifs, validation_section_html

__version__ = VERSION


def load(path: str | os.PathLike | None = None, architecture: str | os.PathLike | None = None
         ) -> Network:
    """Load a model as a JAX `Network`.

    `path` may be an nmjax checkpoint (.npz), a Keras 2 or Keras 3 full-model HDF5 file, a
    Keras 3 `.keras` archive, or a weights-only HDF5 file together with `architecture`, the
    JSON of `model.to_json()`. No path means the bundled example model.
    """
    from converters import read_model

    if path is None:
        from .example import example_model_path
        path = example_model_path()
    return read_model(path, architecture)


__all__ = ["load", "Network", "NetworkConfig", "ConvSpec", "HeadOp", "receptive_field",
           "shift_multiplicity", "decode", "decode_layer", "decode_neuron", "DecodeConfig",
           "NeuronResult", "LayerResult", "NmjaxError", "ModelError", "scan", "ScanConfig",
           "NeuronScan", "activation_tracks", "load_sequences", "read_fasta", "spacing_scan",
           "SpacingResult", "window_swap", "SwapResult", "neuron_motifs",
           "validation_section_html", "__version__"]
