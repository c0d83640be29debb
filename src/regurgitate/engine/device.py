"""Where a model runs and in which precision: the device and bf16 autocast choice."""

from __future__ import annotations

from pathlib import Path

import torch


def pick_device(name: str) -> torch.device:
    """`auto` is CUDA where present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX-512 BF16 or AMX), where bf16 autocast
    pays: about 1.7x the training throughput of fp32 on an AVX-512 BF16 EPYC (BENCHMARKS.md).
    Elsewhere bf16 products are emulated, so fp32 stays."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def use_bf16(precision: str, device: torch.device) -> bool:
    if precision == "auto":
        if device.type == "cuda":
            return torch.cuda.is_bf16_supported()
        return device.type == "cpu" and cpu_has_native_bf16()
    return precision == "bf16"


def autocast_context(device: torch.device, bf16: bool):
    if bf16:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return torch.autocast(device_type=device.type, enabled=False)
