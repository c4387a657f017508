"""The scanning pass: every neuron of a conv layer at every base of long sequences, both strands.

A neuron's value f is defined on a window of exactly its receptive field N (after BatchNorm,
before the activation). Running the network's strided stack over a long sequence gives f only
at every S-th window (S = product of the pools below the layer). This pass gives it at EVERY
window start with the shift-and-stitch form of the same stack: each conv is dilated by the
product of the pools below it and each max-pool becomes a stride-1 max over `pool` taps at that
dilation, so output position i of layer l is exactly f of the window [i, i + N_l). The work per
base is that of S_l strided passes' deepest layers but of only one pass of layer 1 (Basset,
all layer-3 neurons: 1.93 MFLOP per base and strand, against 6.4 for 12 strided passes).

Sequences are cut into fixed-length chunks of C = W + N - 1 bases that overlap by N - 1 (N of
the deepest layer scanned), so chunk k scores the windows starting at k*W .. k*W + W - 1 of its
interval and every window is scored exactly once. Each chunk also runs reverse-complemented
in the same batch: f on the minus strand of window i is f(revcomp(x[i:i+N])).

N bases: a window holding any N (or running past the end of its interval) is not scored: NaN
in the activation tracks, never a top region. (N enters the convs as an all-zero one-hot row,
which only the masked windows see.)

Top regions: per neuron, the best window (over both strands) of every N-bp block of each chunk
is a candidate; the best `4 * top` candidates are kept while streaming (so memory does not grow
with the genome), and the top regions are taken from them greedily by score, skipping windows
that overlap a region already taken. An accepted window overlaps windows of at most 4 blocks,
so 4 * top candidates always leave `top` regions when the sequences have that many.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .activations import activation_fn
from .network import Network, NetworkConfig
from .programs import compiled
from .sequences import N_CODE, Interval, extract

DEFAULT_CHUNK = 4096     # bases per chunk (at least 4 receptive fields of the deepest layer)
DEFAULT_BATCH = 4        # chunks per call (each also reverse-complemented: 8 rows)
CANDIDATES_PER_REGION = 4


@dataclass(frozen=True)
class ScanShape:
    """Static shape of one compiled scanning program."""

    layers: tuple[int, ...]
    neurons: tuple[tuple[int, ...], ...]   # per layer, the channels scanned
    receptive: tuple[int, ...]             # N per layer
    window: int                            # W: window starts per chunk
    batch: int                             # chunks per call

    @property
    def chunk(self) -> int:
        return self.window + max(self.receptive) - 1


def scan_shape(net: Network, layers: Sequence[int], neurons: Sequence[Sequence[int]],
               chunk: int = DEFAULT_CHUNK, batch: int = DEFAULT_BATCH) -> ScanShape:
    receptive = tuple(net.receptive_field(l) for l in layers)
    chunk = max(chunk, 4 * max(receptive))
    return ScanShape(tuple(layers), tuple(tuple(int(c) for c in n) for n in neurons), receptive,
                     chunk - max(receptive) + 1, batch)


def dense_conv_outputs(config: NetworkConfig, params, x: jax.Array, layers: Sequence[int],
                       neurons: Sequence[Sequence[int]]) -> dict[int, jax.Array]:
    """Pre-activation outputs of `layers` (channels `neurons`) at every window start of one-hot
    `x` (batch, length, 4): {layer: (batch, length - N_layer + 1, channels)}."""
    out, h, dilation = {}, x, 1
    for l in range(1, max(layers) + 1):
        spec = config.convs[l - 1]
        kernel, bias = params[f"conv{l}"]["kernel"], params[f"conv{l}"]["bias"]
        if l in layers:
            chosen = jnp.asarray(neurons[layers.index(l)])
            out[l] = _dilated_conv(h, kernel[:, :, chosen], dilation) + bias[chosen]
        if l == max(layers):
            break
        a = activation_fn(spec.activation)(_dilated_conv(h, kernel, dilation) + bias)
        if spec.post_affine:
            a = a * params[f"conv{l}_post_scale"] + params[f"conv{l}_post_shift"]
        kept = a.shape[1] - (spec.pool - 1) * dilation
        h = a[:, :kept]
        for t in range(1, spec.pool):
            h = jnp.maximum(h, a[:, t * dilation:t * dilation + kept])
        dilation *= spec.pool
    return out


def _dilated_conv(h: jax.Array, kernel: jax.Array, dilation: int) -> jax.Array:
    # XLA CPU ran this 2x faster than an unfold + dot, 4x faster than a sum of per-tap dots
    # (Basset layer 3, 4,096-base chunks)
    return jax.lax.conv_general_dilated(h, kernel, (1,), "VALID", rhs_dilation=(dilation,),
                                        dimension_numbers=("NWC", "WIO", "NWC"))


def _both_strands(config: NetworkConfig, shape: ScanShape, params, codes: jax.Array):
    """Per layer, (f on +, f on -, window valid) at the chunk's W window starts."""
    x = jax.nn.one_hot(codes, 4, dtype=jnp.float32)   # N (code 4) -> all-zero row
    rows = codes.shape[0]
    z = dense_conv_outputs(config, params, jnp.concatenate([x, x[:, ::-1, ::-1]]),
                           shape.layers, shape.neurons)
    is_n = jnp.pad(jnp.cumsum(codes == N_CODE, axis=1), ((0, 0), (1, 0)))
    out = {}
    for l, n in zip(shape.layers, shape.receptive):
        w = shape.window
        plus = z[l][:rows, :w]
        last = shape.chunk - n            # the rc output j reads forward window chunk - n - j
        minus = z[l][rows:, last - w + 1:last + 1][:, ::-1]
        valid = (is_n[:, n:n + w] - is_n[:, :w]) == 0
        out[l] = (plus, minus, valid)
    return out


@compiled(maxsize=None)
def scan_program(config: NetworkConfig, shape: ScanShape, tracks: bool = False):
    """jit: codes (batch, chunk) -> per layer (best f, its window offset, its strand) of every
    N-bp block of the chunk's windows, shape (batch, blocks, channels); with `tracks` also
    (f on +, f on -) at every window, (batch, window, channels), NaN where not scored."""

    def run(params, codes):
        out = {}
        for l, (plus, minus, valid) in _both_strands(config, shape, params, codes).items():
            n = shape.receptive[shape.layers.index(l)]
            best = jnp.where(valid[..., None], jnp.maximum(plus, minus), -jnp.inf)
            strand = (minus > plus).astype(jnp.int8)
            blocks = -(-shape.window // n)
            pad = ((0, 0), (0, blocks * n - shape.window), (0, 0))
            best = jnp.pad(best, pad, constant_values=-jnp.inf)
            best = best.reshape(best.shape[0], blocks, n, -1)
            offset = jnp.argmax(best, axis=2)
            strand = jnp.pad(strand, pad).reshape(best.shape)
            out[l] = (best.max(axis=2), offset.astype(jnp.int32) + n * jnp.arange(blocks)[:, None],
                      jnp.take_along_axis(strand, offset[:, :, None], axis=2)[:, :, 0])
            if tracks:
                out[l] += tuple(jnp.where(valid[..., None], f, jnp.nan) for f in (plus, minus))
        return out

    return jax.jit(run)


@dataclass(frozen=True)
class Stream:
    """The intervals laid end to end, each followed by one N, as one virtual sequence that is
    cut into chunks: short sequences share a chunk, and no window crosses from one interval
    into the next (it would hold the N)."""

    intervals: tuple[Interval, ...]
    offsets: np.ndarray          # first stream position of each interval

    @classmethod
    def of(cls, intervals: Sequence[Interval]) -> "Stream":
        lengths = np.array([iv.length + 1 for iv in intervals], np.int64)
        return cls(tuple(intervals), np.concatenate([[0], np.cumsum(lengths)[:-1]]))

    @property
    def length(self) -> int:
        return int(self.offsets[-1] + self.intervals[-1].length + 1)

    def locate(self, position: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(interval index, start inside it) of stream positions."""
        owner = np.searchsorted(self.offsets, position, side="right") - 1
        return owner, position - self.offsets[owner]

    def read(self, sequences: dict[str, np.ndarray], start: int, length: int) -> np.ndarray:
        """Base codes of stream positions [start, start + length) (N between intervals and
        past the end)."""
        out = np.full(length, N_CODE, np.uint8)
        first = max(int(np.searchsorted(self.offsets, start, side="right")) - 1, 0)
        for i in range(first, len(self.intervals)):
            lo = int(self.offsets[i])
            if lo >= start + length:
                break
            iv = self.intervals[i]
            a, b = max(start, lo), min(start + length, lo + iv.length)
            if b > a:
                out[a - start:b - start] = extract(sequences, iv.chrom, iv.start + a - lo,
                                                   iv.start + b - lo)
        return out


def chunk_batches(sequences: dict[str, np.ndarray], stream: Stream, shape: ScanShape,
                  skip: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Batches of (codes (batch, chunk) uint8, stream position of each chunk's first window)
    over the whole stream; the last batch is padded with all-N chunks (position -1). `skip`
    batches are passed over (a resumed scan)."""
    starts = range(0, max(stream.length - min(shape.receptive) + 1, 0), shape.window)
    for b in range(skip * shape.batch, len(starts), shape.batch):
        part = starts[b:b + shape.batch]
        codes = np.full((shape.batch, shape.chunk), N_CODE, np.uint8)
        for row, s in enumerate(part):
            codes[row] = stream.read(sequences, s, shape.chunk)
        yield codes, np.array(list(part) + [-1] * (shape.batch - len(part)), np.int64)


def batch_count(stream: Stream, shape: ScanShape) -> int:
    chunks = -(-max(stream.length - min(shape.receptive) + 1, 0) // shape.window)
    return -(-chunks // shape.batch)


@dataclass
class TopCandidates:
    """The best `size` candidate windows per channel seen so far (host side, streaming).

    key = the window's stream position (`Stream`). Candidates are ordered by f, then key, so
    the kept set is the same whenever merges happen (a resumed scan gives the same regions)."""

    size: int
    value: np.ndarray     # (kept, channels) float32
    key: np.ndarray       # (kept, channels) int64
    strand: np.ndarray    # (kept, channels) int8
    pending: list

    @classmethod
    def empty(cls, size: int, channels: int) -> "TopCandidates":
        return cls(size, np.zeros((0, channels), np.float32), np.zeros((0, channels), np.int64),
                   np.zeros((0, channels), np.int8), [])

    def add(self, value: np.ndarray, offset: np.ndarray, strand: np.ndarray,
            start: np.ndarray) -> None:
        """Block peaks of one batch: (batch, blocks, channels) arrays; start -1 = padding."""
        keep = start >= 0
        key = start[keep, None, None] + offset[keep]
        channels = value.shape[-1]
        self.pending.append((value[keep].reshape(-1, channels), key.reshape(-1, channels),
                             strand[keep].reshape(-1, channels)))
        if sum(len(p[0]) for p in self.pending) >= self.size:
            self.merge()

    def merge(self) -> None:
        if not self.pending:
            return
        value, key, strand = (np.concatenate([old] + [p[i] for p in self.pending])
                              for i, old in enumerate((self.value, self.key, self.strand)))
        self.pending = []
        # a total order (f, then position): the kept set does not depend on when merges happen
        order = np.lexsort((key, -value), axis=0)[:self.size]
        self.value, self.key, self.strand = (np.take_along_axis(a, order, axis=0)
                                             for a in (value, key, strand))

    def regions(self, channel: int, top: int, width: int, stream: Stream
                ) -> list[tuple[int, int, int, float]]:
        """Greedy non-overlapping top windows of one channel: (interval, start, strand, f)."""
        self.merge()
        value, key, strand = self.value[:, channel], self.key[:, channel], self.strand[:, channel]
        owners, starts_in = stream.locate(key)
        order = np.lexsort((key, -value))
        taken: dict[int, list[int]] = {}
        out = []
        for j in order:
            if not np.isfinite(value[j]) or len(out) == top:
                break
            owner, start = int(owners[j]), int(starts_in[j])
            starts = taken.setdefault(owner, [])
            at = bisect.bisect(starts, start)
            if (at and start - starts[at - 1] < width) or (at < len(starts)
                                                         and starts[at] - start < width):
                continue
            starts.insert(at, start)
            out.append((owner, start, int(strand[j]), float(value[j])))
        return out
