"""What the project leaves behind and what it says about itself: a finished run leaves no empty
folders under results/, the test suite changes the machine (SLURM's packages and daemons) only
when asked, and the licence and citation files say what pyproject.toml and the docs say."""

import os
import re
import subprocess
import sys
import tomllib

import pytest
import slurm
import yaml
from conftest import REPO

from regurgitate.engine.train import checkpoint_files, remove_checkpoints
from regurgitate.io import atomic_path, make_folder, remove_empty_folders

# --- checkpoints' folders ----------------------------------------------------------------------


def write_checkpoints(path):
    for file in checkpoint_files(path):
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(b"checkpoint")


def test_finished_runs_leave_no_empty_folders_up_to_results(tmp_path):
    results = tmp_path / "results"
    first = results / "checkpoints" / "finetune" / "gen-weak" / "100" / "1" / "last.pt"
    second = results / "checkpoints" / "finetune" / "gen-weak" / "100" / "2" / "last.pt"
    write_checkpoints(first)
    write_checkpoints(second)

    remove_checkpoints(first)  # the other seed still trains: its folders stay
    assert not first.parent.exists()
    assert second.exists() and checkpoint_files(second)[1].exists()

    remove_checkpoints(second)
    assert not (results / "checkpoints").exists()
    assert results.is_dir()  # the folder of every output, never removed


def test_a_set_aside_checkpoint_keeps_its_folder(tmp_path):
    path = tmp_path / "results" / "checkpoints" / "generators" / "weak" / "last.pt"
    write_checkpoints(path)
    corrupt = path.with_name("last.pt.corrupt")
    corrupt.write_bytes(b"damaged")
    remove_checkpoints(path)
    assert not path.exists() and corrupt.exists()


def test_checkpoints_outside_a_checkpoints_folder_keep_their_folders(tmp_path):
    path = tmp_path / "run" / "last.pt"
    write_checkpoints(path)
    remove_checkpoints(path)
    assert not path.exists() and path.parent.is_dir() and tmp_path.is_dir()


def test_empty_folders_are_removed_only_inside_the_given_one(tmp_path):
    with pytest.raises(ValueError, match="does not lie in"):
        remove_empty_folders(tmp_path / "a", up_to=tmp_path / "b")


def test_a_writer_makes_a_parent_again_that_another_job_removed(tmp_path, monkeypatch):
    """Two jobs share results/checkpoints/finetune/gen-weak/100: one makes that folder and is
    about to make its seed's folder in it when the other, finished, removes it as empty."""
    shared = tmp_path / "checkpoints" / "100"
    target = shared / "2" / "last.pt"
    mkdir = os.mkdir
    removed = []

    def mkdir_racing(path, *args, **kwargs):
        # after this job made the shared folder, before it makes its own inside
        if str(path) == str(target.parent) and shared.is_dir() and not removed:
            removed.append(path)
            remove_empty_folders(shared, up_to=tmp_path / "checkpoints")  # the other job
        return mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir_racing)
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"checkpoint")
    assert removed and target.read_bytes() == b"checkpoint"

    removed.clear()
    target.unlink()
    target.parent.rmdir()
    shared.rmdir()
    assert make_folder(target.parent).is_dir() and removed


@pytest.mark.slow
def test_finished_study_leaves_no_empty_folders(finished_run):
    results = finished_run / "results"
    empty = [str(p) for p in results.rglob("*") if p.is_dir() and not any(p.iterdir())]
    assert empty == []


# --- the SLURM tests change the machine only when asked ------------------------------------------


def test_slurm_tests_skip_and_say_how_to_run_them_unless_asked(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != slurm.SWITCH}
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", "-q"]
    command += ["--basetemp", str(tmp_path / "pytest"), str(REPO / "tests" / "test_slurm.py")]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert re.search(r"\b3 skipped\b", result.stdout), result.stdout[-3000:]
    assert "passed" not in result.stdout and f"{slurm.SWITCH}=1" in result.stdout


def test_slurm_helpers_refuse_to_install_or_start_unless_asked(tmp_path, monkeypatch):
    monkeypatch.delenv(slurm.SWITCH, raising=False)
    ran = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: ran.append(a))
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: ran.append(a))
    monkeypatch.setattr(slurm, "RUN_CONF", tmp_path / "run" / "slurm" / "conf")
    monkeypatch.setattr(slurm.shutil, "which", lambda name: None)  # nothing installed
    with pytest.raises(slurm.SlurmUnavailable, match=f"{slurm.SWITCH}=1"):
        slurm.install()
    with pytest.raises(slurm.SlurmUnavailable, match=f"{slurm.SWITCH}=1"):
        slurm.Cluster(tmp_path / "cluster").start()
    assert ran == [] and not (tmp_path / "run").exists() and not (tmp_path / "cluster").exists()


def test_ci_runs_the_slurm_tests():
    script = (REPO / ".ci" / "run").read_text()
    assert re.search(rf"^export {slurm.SWITCH}=1$", script, re.MULTILINE)


# --- licence and citation ------------------------------------------------------------------------


def test_licence_and_citation_agree_with_the_package_and_the_docs():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"
    assert (REPO / "LICENSE").read_text().startswith("MIT License\n")

    citation = yaml.safe_load((REPO / "CITATION.cff").read_text())
    # the keys CFF 1.2.0 requires, with the types its schema gives them
    assert citation["cff-version"] == "1.2.0"
    assert isinstance(citation["message"], str) and citation["message"].strip()
    assert isinstance(citation["title"], str) and citation["title"].strip()
    assert citation["authors"] and all(
        isinstance(a, dict) and (a.get("name") or a.get("family-names"))
        for a in citation["authors"]
    )
    assert citation["type"] == "software"
    assert citation["version"] == project["version"]
    assert citation["license"] == project["license"]

    # The study it reproduces, as docs/study.md names it.
    study = (REPO / "docs" / "study.md").read_text()
    (paper,) = citation["references"]
    assert f'"{paper["title"]}"' in " ".join(study.split())
    surnames = [a["family-names"] for a in paper["authors"]]
    assert f"{', '.join(surnames[:-1])} and {surnames[-1]}" in study
    assert str(paper["year"]) in study
