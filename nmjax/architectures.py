"""Named conv-stack architectures (paper and its Methods), scaled by a width multiplier.

Every block is Conv1D(valid) -> BatchNorm -> ReLU [-> MaxPool1D]; the head flattens the last
block and applies dense layers, the last one with a sigmoid per task.

- basset: 300/200/200 kernels of width 19/11/7, pools 3/4/4; dense 1000, 1000.
- deepsea: 320/480/960 kernels of width 8, pools 4/4; dense 925.
- bd5: 32, 64, 128, 256, 512 kernels of width 3, pool 2 after each of the first four; dense 1024.
- bd10: 64,64,128,128,256,256,384,384,512,512; first kernel 7, then 3; pool 2 after every
  second conv but the last; dense 1024.
- dd10: 128,128,160,160,256,320,512,640,1024,1280, same kernels and pools as bd10; dense 925.
- example5: 24,24,32,32,32 kernels of width 7,3,3,3,3, pool 2 after each (receptive fields
  7, 12, 22, 42, 82 bp); dense 64. Small enough to decode on 2 CPU cores: the bundled example.

The width multiplier scales every conv and hidden dense width (rounded, at least 1).
"""
from __future__ import annotations

import dataclasses

from .errors import NmjaxError
from .network import ConvSpec, HeadOp, NetworkConfig


@dataclasses.dataclass(frozen=True)
class Architecture:
    """Conv kernels, widths and pools per layer and hidden dense widths, before scaling."""

    channels: tuple[int, ...]
    kernel_widths: tuple[int, ...]
    pools: tuple[int, ...]
    dense: tuple[int, ...]


_BD10_POOLS = (1, 2, 1, 2, 1, 2, 1, 2, 1, 1)
_TEN_KERNELS = (7,) + (3,) * 9

ARCHITECTURES: dict[str, Architecture] = {
    "basset": Architecture((300, 200, 200), (19, 11, 7), (3, 4, 4), (1000, 1000)),
    "deepsea": Architecture((320, 480, 960), (8, 8, 8), (4, 4, 1), (925,)),
    "bd5": Architecture((32, 64, 128, 256, 512), (3,) * 5, (2, 2, 2, 2, 1), (1024,)),
    "bd10": Architecture((64, 64, 128, 128, 256, 256, 384, 384, 512, 512), _TEN_KERNELS,
                         _BD10_POOLS, (1024,)),
    "dd10": Architecture((128, 128, 160, 160, 256, 320, 512, 640, 1024, 1280), _TEN_KERNELS,
                         _BD10_POOLS, (925,)),
    "example5": Architecture((24, 24, 32, 32, 32), (7, 3, 3, 3, 3), (2, 2, 2, 2, 2), (64,)),
}


def _scale(width: int, multiplier: float) -> int:
    return max(1, int(round(width * multiplier)))


def build_config(name: str, num_tasks: int, input_length: int, width: float = 1.0
                 ) -> NetworkConfig:
    """The NetworkConfig of a named architecture for `num_tasks` sigmoid outputs."""
    if name not in ARCHITECTURES:
        raise NmjaxError(f"unknown architecture {name!r}; choose one of "
                         f"{', '.join(ARCHITECTURES)}")
    if width <= 0:
        raise NmjaxError(f"width multiplier must be > 0, got {width}")
    arch = ARCHITECTURES[name]
    convs, in_ch = [], 4
    for l, (c, k, p) in enumerate(zip(arch.channels, arch.kernel_widths, arch.pools), start=1):
        convs.append(ConvSpec(k, _scale(c, width), in_ch, "relu", p, False, f"conv{l}"))
        in_ch = convs[-1].channels
    head = [HeadOp("flatten", name="flatten")]
    head += [HeadOp("dense", _scale(u, width), "relu", f"dense{j}")
             for j, u in enumerate(arch.dense, start=1)]
    head.append(HeadOp("dense", num_tasks, "sigmoid", "output"))
    config = NetworkConfig(tuple(convs), tuple(head), input_length,
                           source=f"nmjax.train {name} width={width:g}")
    _check_fits(config, name)
    return config


def _check_fits(config: NetworkConfig, name: str) -> None:
    length = config.input_length
    for l, c in enumerate(config.convs, start=1):
        length = length - c.kernel_width + 1
        if length < 1:
            raise NmjaxError(f"architecture {name}: input of {config.input_length} bp is too "
                             f"short, conv layer {l} has no output position; use longer "
                             "sequences")
        length //= c.pool
        if length < 1:
            raise NmjaxError(f"architecture {name}: input of {config.input_length} bp is too "
                             f"short for the pool after conv layer {l}")
