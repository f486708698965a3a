"""Which Keras dtype policy `train.mixed_precision` means on the machine at hand.

`dtype_policy` is the rule, a pure function; the other functions read the hardware it needs.
"""

from __future__ import annotations

import os
from pathlib import Path

import tensorflow as tf

# CPU flags of native bfloat16 arithmetic (AVX512-BF16 dot products, AMX tiles): without
# them TensorFlow emulates bfloat16 and mixed precision is slower than float32.
BFLOAT16_CPU_FLAGS = {"avx512_bf16", "amx_bf16"}


def dtype_policy(mixed_precision: str, gpu_capabilities: list[tuple[int, int]], cpu_flags: set[str],
                 onednn: bool = True) -> str:
    """The Keras dtype policy for `train.mixed_precision` on this hardware.

    `auto` picks what measured fastest without hurting accuracy: float16 on GPUs with tensor
    cores (compute capability 7.0+); bfloat16 on CPUs with native bfloat16 (about 2x the
    float32 speed of the default CNN on 2 AVX512-BF16 cores, test accuracy within the gate's
    tolerance: README, "Performance"), as long as TensorFlow's oneDNN kernels, which use it,
    are on; float32 elsewhere.
    """
    if mixed_precision == "auto":
        if gpu_capabilities:
            return "mixed_float16" if min(gpu_capabilities) >= (7, 0) else "float32"
        return "mixed_bfloat16" if onednn and cpu_flags & BFLOAT16_CPU_FLAGS else "float32"
    return "float32" if mixed_precision == "none" else f"mixed_{mixed_precision}"


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags (Linux); empty where /proc/cpuinfo does not exist."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    return {flag for line in text.splitlines() if line.startswith("flags") for flag in line.split(":", 1)[1].split()}


def gpu_capabilities() -> list[tuple[int, int]]:
    details = (tf.config.experimental.get_device_details(gpu) for gpu in tf.config.list_physical_devices("GPU"))
    return [tuple(d.get("compute_capability", (0, 0))) for d in details]


def policy_for_this_machine(mixed_precision: str) -> str:
    """`dtype_policy` with this machine's GPUs, CPU flags and oneDNN switch."""
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "0"
    return dtype_policy(mixed_precision, gpu_capabilities(), cpu_flags(), onednn)
