"""What the benchmarks share: the machine's figures (matmul peak, load, peak memory), models with
random weights, compiled programs with their compile time and temporary memory.

Architectures get random weights with realistic BatchNorm statistics folded in: each conv's
pre-activation is standardised on random one-hot sequences, then scaled by gamma ~ U(0.5, 1.5)
and shifted by beta ~ N(-0.3, 0.3), as a trained BatchNorm would.
"""
from __future__ import annotations

import dataclasses
import os
import platform
import resource
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .activations import activation_fn
from .network import Network, NetworkConfig, maxpool

INPUT_LENGTH = {"basset": 600, "deepsea": 1000, "bd10": 600, "dd10": 600}
COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration",
                  "/jax/core/compile/jaxpr_to_mlir_module_duration",
                  "/jax/core/compile/backend_compile_duration")


# -- machine -----------------------------------------------------------------------------
def best_seconds(fn, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def matmul_peak(n: int = 2048, repeats: int = 5) -> dict:
    """GFLOP/s of an n x n matmul: jnp.dot under jit (fp32; bf16 in, fp32 out) and numpy fp32."""
    rng = np.random.default_rng(0)
    a, b = (rng.random((n, n), np.float32) for _ in range(2))
    flops = 2 * n ** 3
    dot = jax.jit(lambda x, y: jnp.dot(x, y, preferred_element_type=jnp.float32))
    out = {}
    for name, (x, y) in {"jax_fp32": (jnp.asarray(a), jnp.asarray(b)),
                         "jax_bf16": (jnp.asarray(a, jnp.bfloat16),
                                      jnp.asarray(b, jnp.bfloat16))}.items():
        out[name] = flops / best_seconds(lambda: dot(x, y).block_until_ready(), repeats) / 1e9
    out["numpy_fp32"] = flops / best_seconds(lambda: a @ b, repeats) / 1e9
    out["fp32_peak"] = max(out["jax_fp32"], out["numpy_fp32"])
    return {k: round(v, 1) for k, v in out.items()}


def machine_name() -> str:
    """CPU model (from /proc/cpuinfo where there is one), cores and whether the CPU has AMX
    tiles: the bf16 rates, and so every time compared with another machine's, depend on it."""
    model, amx = platform.processor() or platform.machine(), False
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        info = ""
    for line in info.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            model = value.strip()
        elif key.strip() == "flags":
            amx = "amx_bf16" in value.split()
    return f"{model}, {os.cpu_count()} cores{', AMX' if amx else ', no AMX' if info else ''}"


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# -- models ------------------------------------------------------------------------------
def random_network(config: NetworkConfig, seed: int = 0, batch: int = 16) -> Network:
    """Random conv weights with BatchNorm statistics folded in (see the module docstring)."""
    config = dataclasses.replace(config, head=())
    rng = np.random.default_rng(seed)
    x = jax.nn.one_hot(rng.integers(0, 4, (batch, config.input_length)), 4, dtype=jnp.float32)
    params: dict = {}
    for l, spec in enumerate(config.convs, start=1):
        fan_in = spec.kernel_width * spec.in_channels
        kernel = rng.normal(0, np.sqrt(2 / fan_in),
                            (spec.kernel_width, spec.in_channels, spec.channels))
        z = np.asarray(_conv(x, jnp.asarray(kernel, jnp.float32)))
        mean, std = z.mean((0, 1)), z.std((0, 1)) + 1e-3
        gamma = rng.uniform(0.5, 1.5, spec.channels)
        beta = rng.normal(-0.3, 0.3, spec.channels)
        params[f"conv{l}"] = {"kernel": (kernel * gamma / std).astype(np.float32),
                              "bias": (beta - mean * gamma / std).astype(np.float32)}
        x = maxpool(activation_fn(spec.activation)(_conv(x, params[f"conv{l}"]["kernel"])
                                                    + params[f"conv{l}"]["bias"]), spec.pool)
    return Network(config, params)


def _conv(x: jax.Array, kernel) -> jax.Array:
    return jax.lax.conv_general_dilated(x, jnp.asarray(kernel), (1,), "VALID",
                                        dimension_numbers=("NWC", "WIO", "NWC"))


def model(name: str, width: float) -> Network:
    """A bench model: a named architecture with random weights, or 'example' (bundled)."""
    if name == "example":
        import nmjax
        return nmjax.load(None)
    from .architectures import build_config
    return random_network(build_config(name, 1, INPUT_LENGTH[name], width))


def forward_flops(net: Network, layer: int) -> int:
    """FLOPs of one neuron's value on one window: conv blocks 1..layer-1 in full + one dot."""
    from .scoring import block_shapes

    neuron = net.config.convs[layer - 1]
    blocks = sum(2 * out_len * width * cout
                 for out_len, width, cout in block_shapes(net.config, layer))
    return blocks + 2 * neuron.kernel_width * neuron.in_channels


# -- compiled programs ------------------------------------------------------------------
def compiled_program(fn, *args):
    """(compiled program, compile seconds, temporary buffer MB)."""
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    seconds = time.perf_counter() - t0
    try:
        temp_mb = compiled.memory_analysis().temp_size_in_bytes / 2 ** 20
    except (AttributeError, TypeError):  # not reported by every backend
        temp_mb = float("nan")
    return compiled, seconds, round(temp_mb, 1)


def run_seconds(compiled, args, repeats: int) -> float:
    return best_seconds(lambda: jax.block_until_ready(compiled(*args)), repeats)


def compile_clock():
    """A function giving the seconds JAX has spent tracing, lowering and compiling since this
    call (from `jax.monitoring` duration events)."""
    total = [0.0]

    def listen(event: str, seconds: float, **_) -> None:
        if event in COMPILE_EVENTS:
            total[0] += seconds

    jax.monitoring.register_event_duration_secs_listener(listen)
    return lambda: total[0]
