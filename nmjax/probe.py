"""In-silico motif insertion (as in the Basset paper): which neurons respond to a given motif,
and did a decode run's sampling reach that response?

NeuronMotif's genetic algorithm seeks a neuron's maximum; a neuron that responds to two motifs
(a model that needs only "A or B" from it) is decoded as the one whose optimum the GA falls
into. Probing checks a motif directly. For every conv layer whose receptive field N holds the
motif: `samples` random N-bp windows (uniform bases), each with one instance drawn from the PPM
on a random strand at a random position, against the same windows without it. Per neuron:
- gain: mean f(with) - f(without), f being the decoder's neuron value (after BN, before the
  activation) on the whole window;
- f_max: the largest f over the windows with the motif;
- given a decode directory, the neuron's decoded act (max over its subsets) and whether f_max
  exceeds it by more than 1 %: then the motif drives the neuron higher than anything the
  sampling kept, a mode the decoded motifs do not show.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .arrays import draw_instances
from .errors import NmjaxError
from .fileio import write_text
from .meme import Motif

EXCEED_MARGIN = 0.01  # relative: f_max ties with act (the GA kept that sequence) are not flagged
PROBE_COLUMNS = ("motif", "name", "layer", "neuron", "gain", "f_max", "decoded_act", "exceeds")


@dataclass(frozen=True)
class ProbeRow:
    """Response of one neuron to one inserted motif (decoded_act is nan without a decode run)."""

    motif: str
    name: str
    layer: int
    neuron: int
    gain: float
    f_max: float
    decoded_act: float

    @property
    def exceeds(self) -> bool:
        return bool(self.f_max > self.decoded_act + EXCEED_MARGIN * abs(self.decoded_act))


def insert_instances(rng: np.random.Generator, background: np.ndarray, ppm: np.ndarray
                     ) -> np.ndarray:
    """Copy of `background` (n, N) bases with one PPM instance per row, random strand and start."""
    n, length = background.shape
    width = len(ppm)
    draws = draw_instances(rng, ppm, n)
    minus = rng.random(n) < 0.5
    draws[minus] = 3 - draws[minus, ::-1]
    starts = rng.integers(0, length - width + 1, n)
    out = background.copy()
    out[np.arange(n)[:, None], starts[:, None] + np.arange(width)] = draws
    return out


def probe_layer(net, layer: int, motifs: Sequence[Motif], samples: int = 500, seed: int = 0,
                decoded_act: dict[int, float] | None = None) -> list[ProbeRow]:
    """Rows for every neuron of `layer` and every motif that fits in its receptive field."""
    length = net.receptive_field(layer)
    rng = np.random.default_rng([seed, layer])
    background = rng.integers(0, 4, (samples, length))
    eye = np.eye(4, dtype=np.float32)
    without = np.asarray(net.conv_output(eye[background], layer))[:, 0]
    rows = []
    for m in motifs:
        if len(m.ppm) > length:
            continue
        with_motif = np.asarray(net.conv_output(eye[insert_instances(rng, background, m.ppm)],
                                                layer))[:, 0]
        gain, f_max = (with_motif - without).mean(0), with_motif.max(0)
        for c in range(net.channels(layer)):
            act = (decoded_act or {}).get(c, float("nan"))
            rows.append(ProbeRow(m.name, m.alt_name or m.name, layer, c, float(gain[c]),
                                 float(f_max[c]), act))
    return rows


def decoded_acts(out_dir: str | os.PathLike, layer: int) -> dict[int, float] | None:
    """Per neuron, the max act over its subsets in DIR/layer{L}/neurons.tsv (None: not decoded)."""
    from .runfolder import layer_dir, read_neurons

    if not (layer_dir(out_dir, layer) / "neurons.tsv").is_file():
        return None
    acts: dict[int, float] = {}
    for r in read_neurons(layer_dir(out_dir, layer)):
        acts[r.neuron] = max(acts.get(r.neuron, 0.0), r.act)
    return acts


def probe(net, motifs: Sequence[Motif], layers: Sequence[int] | None = None,
          samples: int = 500, seed: int = 0, decode_dir: str | os.PathLike | None = None
          ) -> list[ProbeRow]:
    """Insertion rows of every requested conv layer (default all), neurons by layer."""
    if samples < 1:
        raise NmjaxError(f"samples must be at least 1, not {samples}")
    if decode_dir is not None and not Path(decode_dir).is_dir():
        raise NmjaxError(f"decode directory {decode_dir} does not exist: give the --out folder "
                         f"of `nmjax decode`")
    layers = list(layers or range(1, net.num_conv_layers + 1))
    for layer in layers:
        net.check_layer(layer)
    rows = []
    for layer in layers:
        acts = decoded_acts(decode_dir, layer) if decode_dir is not None else None
        rows += probe_layer(net, layer, motifs, samples, seed, acts)
    if not rows:
        longest = max(len(m.ppm) for m in motifs)
        raise NmjaxError(f"no requested layer's receptive field holds a {longest} bp motif; "
                         f"choose deeper layers (see `nmjax info`)")
    return rows


def write_probe(path: str | os.PathLike, rows: Sequence[ProbeRow]) -> None:
    lines = ["\t".join(PROBE_COLUMNS)]
    for r in rows:
        lines.append("\t".join([r.motif, r.name, str(r.layer), str(r.neuron), f"{r.gain:.4g}",
                                f"{r.f_max:.4g}", f"{r.decoded_act:.4g}",
                                "yes" if r.exceeds else "no"]))
    write_text(path, "\n".join(lines) + "\n")


def summary_text(rows: Sequence[ProbeRow], top: int = 3) -> str:
    """Per motif and layer, the `top` neurons by gain, flagging a response above the decoded act."""
    out = []
    keys = sorted({(r.motif, r.name, r.layer) for r in rows}, key=lambda k: (k[0], k[2]))
    for motif, name, layer in keys:
        best = sorted((r for r in rows if r.motif == motif and r.layer == layer),
                      key=lambda r: -r.gain)[:top]
        cells = []
        for r in best:
            note = "" if np.isnan(r.decoded_act) else (
                f", decoded act {r.decoded_act:.3g}" + (" EXCEEDED" if r.exceeds else ""))
            cells.append(f"N{r.neuron} gain {r.gain:.3g}, max {r.f_max:.3g}{note}")
        out.append(f"{name} ({motif}) layer {layer}: " + "; ".join(cells))
    return "\n".join(out)
