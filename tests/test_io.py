"""Outputs appear whole, with the user's permissions; a killed write's leftovers go; a full disk
is called by its name."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from regurgitate.engine.model import save_torch
from regurgitate.io import DiskFullError, atomic_path, remove_stale_temporaries, write_json


@pytest.fixture
def umask():
    """Set the umask for one test (and put the old one back)."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_outputs_get_the_users_umask(tmp_path, umask, mask, mode):
    umask(mask)
    write_json({"a": 1}, tmp_path / "a.json")
    save_torch({"w": torch.zeros(2)}, tmp_path / "m.pt")
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == mode
    assert (tmp_path / "m.pt").stat().st_mode & 0o777 == mode


def dead_pid() -> int:
    """The id of a process that has ended."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_killed_writers_temporary_file_goes_with_the_next_write(tmp_path):
    target = tmp_path / "model.pt"
    killed = tmp_path / f".model.pt.{dead_pid()}.abc123.tmp"
    running = tmp_path / f".model.pt.{os.getppid()}.def456.tmp"  # a live process's write
    older = tmp_path / ".model.pt.q7x_2k9a.tmp"  # written before pids were in the name
    other = tmp_path / f".last.pt.{dead_pid()}.abc123.tmp"  # another target's
    for path in (killed, running, older, other):
        path.write_bytes(b"partial")
    save_torch({"w": torch.zeros(2)}, target)
    assert not killed.exists() and not older.exists()
    assert running.exists() and other.exists()
    assert remove_stale_temporaries(tmp_path / "last.pt") == [other]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["model.pt", running.name])


def test_a_full_disk_is_called_full(tmp_path):
    """/dev/full fails every write with ENOSPC, as a full file system does; torch reports it as
    a RuntimeError ('unexpected pos ...') raised while handling the OSError."""
    target = tmp_path / "last.pt"
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    with (
        pytest.raises(DiskFullError, match=r"the disk is full: writing .*last\.pt") as caught,
        atomic_path(target),
        open("/dev/full", "wb") as full,
    ):
        torch.save({"w": torch.zeros(10_000)}, full)
    assert "bytes left on its file system" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def small_filesystem(tmp_path):
    """A 256 KiB tmpfs (needs root and a system that allows mounts)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small file system: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_checkpoint_on_a_full_file_system_says_so_and_keeps_the_last_one(small_filesystem):
    from regurgitate.engine.train import checkpoint_files, save_checkpoint

    path = small_filesystem / "last.pt"
    save_checkpoint(path, {"w": torch.zeros(8_000)})  # 32 kB: fits
    with pytest.raises(DiskFullError, match="the disk is full"):
        save_checkpoint(path, {"w": torch.ones(200_000)})  # 800 kB: does not
    latest, previous = checkpoint_files(path)
    for kept in (latest, previous):  # the last whole checkpoint, under both names
        assert torch.equal(torch.load(kept)["w"], torch.zeros(8_000))
    assert sorted(p.name for p in small_filesystem.iterdir()) == [previous.name, latest.name]
