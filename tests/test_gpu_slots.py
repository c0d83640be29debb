"""One GPU per job on a local multi-GPU machine (regurgitate.engine.gpu_slots), tested without
a GPU: the slots are lock files, and the processes that take them are real processes."""

import os
import signal
import subprocess
import sys

import pytest

from regurgitate.engine import device, gpu_slots

# A job: take one of the GPUs, say which, and hold it until stdin closes (or the job is killed).
JOB = """
import sys
from pathlib import Path
from regurgitate.engine.gpu_slots import acquire
timeout = float(sys.argv[3]) if len(sys.argv) > 3 else None
try:
    slot = acquire(sys.argv[2].split(","), Path(sys.argv[1]), timeout=timeout)
except TimeoutError:
    print("none", flush=True)
    raise SystemExit(3)
print(slot.device, flush=True)
sys.stdin.read()
"""


def start_job(folder, devices, timeout=None):
    argv = [sys.executable, "-c", JOB, str(folder), ",".join(devices)]
    if timeout is not None:
        argv.append(str(timeout))
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def test_jobs_asking_at_once_get_distinct_gpus_and_a_killed_job_frees_its_own(tmp_path):
    gpus = ["0", "1", "2", "3"]
    jobs = [start_job(tmp_path, gpus) for _ in gpus]  # all started before any has answered
    try:
        held = {job.stdout.readline().strip(): job for job in jobs}
        assert sorted(held) == gpus
        # A fifth job finds every GPU held.
        late = start_job(tmp_path, gpus, timeout=1.0)
        assert late.stdout.readline().strip() == "none" and late.wait() == 3
        # The job on GPU 2 is killed: no clean-up of its own, the kernel frees its lock.
        held["2"].send_signal(signal.SIGKILL)
        held["2"].wait()
        waiting = start_job(tmp_path, gpus, timeout=30.0)
        assert waiting.stdout.readline().strip() == "2"
        waiting.stdin.close()
        assert waiting.wait() == 0
    finally:
        for job in jobs:
            if job.poll() is None:
                job.stdin.close()
                job.wait()


def test_a_job_waits_for_a_gpu_that_is_freed(tmp_path):
    holder = start_job(tmp_path, ["0"])
    assert holder.stdout.readline().strip() == "0"
    waiting = start_job(tmp_path, ["0"], timeout=30.0)
    holder.stdin.close()  # the holder ends normally
    assert holder.wait() == 0
    assert waiting.stdout.readline().strip() == "0"
    waiting.stdin.close()
    assert waiting.wait() == 0


@pytest.fixture
def fresh_claim(monkeypatch, tmp_path):
    """A process that holds no slot yet, whose lock folder is `tmp_path`, on a machine of two
    GPUs (CUDA_VISIBLE_DEVICES lists them, as a user keeping others for other work would)."""
    monkeypatch.setattr(gpu_slots, "_held", None)
    monkeypatch.setenv(gpu_slots.LOCK_DIR_VARIABLE, str(tmp_path))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,7")
    for name in gpu_slots.SCHEDULER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    yield
    if gpu_slots._held is not None:
        gpu_slots._held.release()


def test_a_cuda_job_sees_only_the_gpu_it_holds(fresh_claim, tmp_path):
    other = start_job(tmp_path, ["5", "7"])
    try:
        assert other.stdout.readline().strip() == "5"
        assert device.pick_device("cpu").type == "cpu" and gpu_slots._held is None
        device.pick_device("auto")  # this machine has no GPU: the CPU, but the slot is taken
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "7" == gpu_slots._held.device
        assert gpu_slots.claim() == "7"  # once per process
    finally:
        other.stdin.close()
        other.wait()


def test_a_job_a_scheduler_placed_claims_nothing(fresh_claim, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    assert gpu_slots.claim() is None
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "5,7"


def test_without_a_gpu_nothing_is_claimed(fresh_claim, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert gpu_slots.visible_devices() == []
    assert gpu_slots.claim() is None
