"""How a job computes on its device (regurgitate.engine.device), tested without a GPU: the
device queries are patched where torch answers them."""

import os

import pytest
import torch
from conftest import TINY, run_snakemake, write_toy_corpus

from regurgitate.engine import device
from regurgitate.engine.device import DeviceError, configure, pick_device, require_device, use_bf16

CUDA = torch.device("cuda:1")


@pytest.fixture
def gpu_of(monkeypatch):
    """A GPU of the given compute capability, behind torch's own queries; torch's
    is_bf16_supported says yes on every GPU, as its default (emulation included) does."""

    def patch(major: int, minor: int):
        asked = []

        def capability(where=None):
            asked.append(torch.device(where))
            return (major, minor)

        monkeypatch.setattr(torch.cuda, "get_device_capability", capability)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
        return asked

    return patch


@pytest.mark.parametrize(
    ("gpu", "capability", "bf16"),
    [
        ("V100", (7, 0), False),
        ("T4", (7, 5), False),
        ("A100", (8, 0), True),
        ("H100", (9, 0), True),
    ],
)
def test_auto_precision_takes_bf16_only_where_it_is_native(gpu_of, gpu, capability, bf16):
    asked = gpu_of(*capability)
    assert use_bf16("auto", CUDA) is bf16, gpu
    assert asked == [CUDA]  # the run's own GPU, not the current one
    assert use_bf16("bf16", CUDA) and not use_bf16("fp32", CUDA)


@pytest.fixture
def restored_math():
    """configure() sets process-wide switches: put them back after the test."""
    precision = torch.get_float32_matmul_precision()
    deterministic = torch.are_deterministic_algorithms_enabled()
    workspace = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    yield
    torch.set_float32_matmul_precision(precision)
    torch.use_deterministic_algorithms(deterministic)
    if workspace is None:
        os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
    else:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = workspace


@pytest.mark.parametrize(
    ("capability", "strict", "matmuls"),
    [((8, 0), False, "high"), ((9, 0), True, "highest"), ((7, 0), False, "highest")],
)
def test_fp32_matmuls_use_tf32_on_ampere_and_later_unless_strict(
    gpu_of, restored_math, capability, strict, matmuls
):
    gpu_of(*capability)
    configure(CUDA, strict_fp32=strict)
    assert torch.get_float32_matmul_precision() == matmuls  # "high": TF32 tensor cores


def test_deterministic_switch_sets_what_cuda_reproducibility_needs(
    gpu_of, restored_math, monkeypatch
):
    gpu_of(8, 0)
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    configure(CUDA, deterministic=True)
    assert torch.are_deterministic_algorithms_enabled()
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == device.CUBLAS_WORKSPACE
    configure(CUDA)
    assert not torch.are_deterministic_algorithms_enabled()


def test_a_cpu_run_leaves_cuda_alone(restored_math, monkeypatch):
    def untouchable(*args, **kwargs):
        raise AssertionError("a CPU run asked CUDA")

    for name in ("get_device_capability", "is_available", "get_rng_state", "set_rng_state"):
        monkeypatch.setattr(torch.cuda, name, untouchable)
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    cpu = torch.device("cpu")
    configure(cpu, deterministic=True, strict_fp32=True)
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    assert device.rng_state(cpu) is None
    device.set_rng_state(torch.zeros(3, dtype=torch.uint8), cpu)
    assert pick_device("cpu") == cpu


def test_the_random_state_is_the_run_devices(monkeypatch):
    """A run on cuda:1 saves and restores cuda:1's generator, not the current device's."""
    calls = []
    monkeypatch.setattr(
        torch.cuda, "get_rng_state", lambda where="cuda": calls.append(("get", where)) or "state"
    )
    monkeypatch.setattr(
        torch.cuda, "set_rng_state", lambda state, where="cuda": calls.append(("set", where))
    )
    assert device.rng_state(CUDA) == "state"
    device.set_rng_state("state", CUDA)
    assert calls == [("get", CUDA), ("set", CUDA)]


def test_cuda_asked_for_on_a_machine_without_it_is_refused_naming_the_key(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for name in ("cuda", "cuda:1"):
        with pytest.raises(DeviceError, match=f"device: {name} asks for a GPU"):
            require_device(name)
        with pytest.raises(DeviceError, match="Set `device: cpu`"):
            pick_device(name)
    require_device("cpu")
    require_device("auto")
    assert pick_device("auto") == torch.device("cpu")


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_cuda_study_stops_before_any_job_on_a_machine_without_cuda(tmp_path):
    write_toy_corpus(tmp_path / "data" / "corpus.tsv", 1500)
    result = run_snakemake(tmp_path, TINY, "--cores", "1", "--config", "device=cuda", check=False)
    assert result.returncode != 0
    assert "device: cuda asks for a GPU" in result.stderr + result.stdout
    assert not (tmp_path / "logs").exists()  # no job started
