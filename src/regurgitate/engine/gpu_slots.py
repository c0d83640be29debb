"""One GPU per job on a machine with several: each job that runs on CUDA takes a GPU no other
running job holds, and sees it as its only device.

Snakemake's local executor counts GPUs (`--resources gpu=N` caps the jobs that declare
`gpu=1`) but does not say which GPU a job gets: without this, every job would run on GPU 0.
A job claims a slot by locking a file named after the GPU (fcntl.flock, non-blocking, in a
folder every job on the machine shares) and sets CUDA_VISIBLE_DEVICES to that GPU before torch
looks at CUDA. The lock lives as long as the process: when the job ends, or is killed, the
operating system frees it, so a crashed job never keeps its GPU.

Where a scheduler has placed the job already (SLURM sets CUDA_VISIBLE_DEVICES to the GPUs it
gave the job), or where the machine has no NVIDIA GPU, nothing is claimed.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# The folder of the lock files: one per machine, shared by every job (and user) on it.
LOCK_DIR_VARIABLE = "REGURGITATE_GPU_LOCK_DIR"
# Set (to anything) where something else hands each job its GPU.
SCHEDULER_VARIABLES = ("SLURM_JOB_ID", "REGURGITATE_GPU_ASSIGNED")
# How often a job that finds every GPU taken looks again, and how often it says so.
POLL_SECONDS = 1.0
REPORT_SECONDS = 60.0


@dataclass
class Slot:
    """A GPU held by this process: its id as CUDA_VISIBLE_DEVICES names it, and the open file
    whose lock holds it (closing the file frees the GPU)."""

    device: str
    handle: object

    def release(self) -> None:
        self.handle.close()


_held: Slot | None = None  # this process's slot, held until it exits


def lock_dir() -> Path:
    configured = os.environ.get(LOCK_DIR_VARIABLE)
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "regurgitate-gpus"


def visible_devices() -> list[str]:
    """The GPUs jobs may take: those CUDA_VISIBLE_DEVICES lists where it is set (a user who
    keeps some GPUs for other work), else every NVIDIA GPU of the machine, counted without
    CUDA (by the driver's /proc entries, else nvidia-smi): a CUDA call would fix the devices
    this process sees before it has chosen one."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [d.strip() for d in listed.split(",") if d.strip()]
    gpus = Path("/proc/driver/nvidia/gpus")
    if gpus.is_dir():
        return [str(i) for i in range(len(list(gpus.iterdir())))]
    try:
        listing = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(listing.splitlines()) if line.startswith("GPU ")]


def acquire(devices: list[str], folder: Path, timeout: float | None = None) -> Slot:
    """Lock the first of `devices` that no other process holds, waiting while all are held
    (more GPU jobs than GPUs: a run without `--resources gpu=N`). TimeoutError after
    `timeout` seconds (None: wait as long as it takes)."""
    if not folder.exists():
        folder.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):  # every user's jobs share the machine's GPUs
            folder.chmod(0o1777)
    start = last_report = time.monotonic()
    while True:
        for device in devices:
            slot = _try_lock(folder, device)
            if slot is not None:
                return slot
        now = time.monotonic()
        if timeout is not None and now - start >= timeout:
            raise TimeoutError(f"all {len(devices)} GPU(s) stayed held by other jobs")
        if now - last_report >= REPORT_SECONDS:
            log.info(
                "waiting for one of %d GPUs: all are held by other jobs (run Snakemake with "
                "--resources gpu=%d to start no more GPU jobs than GPUs)",
                len(devices),
                len(devices),
            )
            last_report = now
        time.sleep(POLL_SECONDS)


def _try_lock(folder: Path, device: str) -> Slot | None:
    path = folder / f"gpu-{device.replace('/', '_')}.lock"
    handle = path.open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    with contextlib.suppress(OSError):  # another user's job locks it after this one
        os.chmod(path, 0o666)
    return Slot(device, handle)


def claim(timeout: float | None = None) -> str | None:
    """Give this process a GPU of its own, once: the GPU's id (also set as
    CUDA_VISIBLE_DEVICES), or None where a scheduler placed the job or there is no GPU."""
    global _held
    if _held is not None:
        return _held.device
    if any(os.environ.get(name) for name in SCHEDULER_VARIABLES):
        return None
    devices = visible_devices()
    if not devices:
        return None
    _held = acquire(devices, lock_dir(), timeout)
    os.environ["CUDA_VISIBLE_DEVICES"] = _held.device
    log.info("running on GPU %s (CUDA_VISIBLE_DEVICES=%s)", _held.device, _held.device)
    return _held.device
