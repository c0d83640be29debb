"""Where a model runs and how it computes there: the device (one GPU of its own per job), bf16
autocast where the hardware has it, TF32 matmuls, deterministic kernels, and the random state of
the run's own device.

No function here touches CUDA unless the run's device is a CUDA device: a CPU run on a GPU host
opens no CUDA context (which would take memory on a GPU another job holds).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from regurgitate.engine import gpu_slots

# bf16 products in hardware: compute capability 8.0 (Ampere) and later. Older GPUs (V100 7.0,
# T4 7.5) emulate them, slower than fp32; torch.cuda.is_bf16_supported() counts emulation too.
NATIVE_BF16_CAPABILITY = (8, 0)
# TF32 tensor cores, for fp32 matmuls: Ampere and later too.
TF32_CAPABILITY = (8, 0)
# cuBLAS is deterministic only with a fixed workspace per stream (the CUDA documentation's
# "Results reproducibility"); `:4096:8` is the larger of the two settings it names.
CUBLAS_WORKSPACE = ":4096:8"


class DeviceError(RuntimeError):
    """The configured device does not exist on this machine."""


def require_device(name: str) -> None:
    """Stop, naming the config key, where `device` asks for CUDA and this machine has none:
    before any job, instead of torch's "Torch not compiled with CUDA enabled" in the first."""
    if not name.startswith("cuda") or torch.cuda.is_available():
        return
    why = (
        "this torch was built without CUDA"
        if torch.version.cuda is None
        else "no CUDA device is visible (no GPU, no driver, or CUDA_VISIBLE_DEVICES hides them)"
    )
    raise DeviceError(
        f"device: {name} asks for a GPU, but {why}. Set `device: cpu` (or `auto`) in the "
        "config, or run the study on a machine with a GPU (on a cluster, submit it through "
        "its profile: the login node needs no GPU)."
    )


def pick_device(name: str) -> torch.device:
    """The device a job runs on. `auto` is CUDA where present, else the CPU. For `auto` and
    `cuda`, a local multi-GPU machine gives the job a GPU of its own first (gpu_slots), the only
    one torch then sees; `cuda:N` is taken as given."""
    if name in ("auto", "cuda"):
        gpu_slots.claim()  # before torch looks at CUDA: it reads CUDA_VISIBLE_DEVICES once
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    require_device(name)
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


def capability(device: torch.device) -> tuple[int, int]:
    """The CUDA compute capability of `device`."""
    return tuple(torch.cuda.get_device_capability(device))


def use_bf16(precision: str, device: torch.device) -> bool:
    """`auto`: bf16 where the hardware computes it natively (compute capability 8.0 or later, or
    a CPU with AVX-512 BF16 or AMX), else fp32."""
    if precision == "auto":
        if device.type == "cuda":
            return capability(device) >= NATIVE_BF16_CAPABILITY
        return device.type == "cpu" and cpu_has_native_bf16()
    return precision == "bf16"


def configure(device: torch.device, *, deterministic: bool = False, strict_fp32: bool = False):
    """Set how this process computes on `device`: fp32 matmuls on TF32 tensor cores on
    Ampere and later (about 8x fp32's peak, a 10-bit mantissa for the products) unless
    `strict_fp32`; with `deterministic`, only deterministic kernels (torch raises where an
    operation has none), cuBLAS with a fixed workspace, and attention through the math kernel
    on CUDA (model.Attention), whose backward is deterministic where the fused ones are not."""
    if device.type == "cuda":
        tf32 = not strict_fp32 and capability(device) >= TF32_CAPABILITY
        torch.set_float32_matmul_precision("high" if tf32 else "highest")
        if deterministic:
            # Read when cuBLAS makes its first handle: the job's first matmul comes later.
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.use_deterministic_algorithms(deterministic)


def rng_state(device: torch.device) -> torch.Tensor | None:
    """The random state of the run's own CUDA device (dropout draws there), None on a CPU."""
    if device.type != "cuda":
        return None
    return torch.cuda.get_rng_state(device)


def set_rng_state(state: torch.Tensor | None, device: torch.device) -> None:
    """Restore `rng_state(device)` on the run's own device."""
    if device.type == "cuda" and state is not None:
        torch.cuda.set_rng_state(state, device)


def autocast_context(device: torch.device, bf16: bool):
    if bf16:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return torch.autocast(device_type=device.type, enabled=False)
