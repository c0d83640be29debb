"""Jobs stop with their Snakemake: promptly after a SIGINT that reaches Snakemake alone, and on
their own when Snakemake is killed outright; every attempt of a job appends to its log.

A small workflow whose jobs run in `job()` and loop until stopped stands for any job; the slow
test at the end does the same to the study's training jobs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import REPO

# Every job writes its pid, then works until stopped.
SNAKEFILE = """
from regurgitate.jobs.stopping import forward_interrupts

forward_interrupts()


rule all:
    input:
        expand("out/{i}.txt", i=[1, 2]),


rule work:
    output:
        "out/{i}.txt",
    log:
        "logs/{i}.log",
    script:
        "work.py"


rule flaky:
    output:
        "flaky.txt",
    log:
        "logs/flaky.log",
    retries: 1
    script:
        "flaky.py"
"""

WORK = """
import time
from pathlib import Path

from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    Path(f"pids/{snakemake.wildcards.i}").write_text(str(__import__("os").getpid()))
    while True:
        sum(range(10_000))  # busy, as a training step is
"""

FLAKY = """
from pathlib import Path

from regurgitate.jobs.log import job

with job(snakemake.log[0]) as log:
    first = not Path("tried").exists()
    Path("tried").touch()
    if first:
        raise RuntimeError("the first attempt fails")
    log.info("the second attempt works")
    Path(snakemake.output[0]).write_text("done")
"""


def default_sigint():
    """Let the child handle SIGINT even where this process ignores it (a background job)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_snakemake(workdir: Path, *args: str, snakefile: Path | None = None) -> subprocess.Popen:
    command = [sys.executable, "-m", "snakemake", "-s", str(snakefile or workdir / "Snakefile")]
    return subprocess.Popen(
        [*command, *args],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=default_sigint,
    )


@pytest.fixture
def workflow(tmp_path):
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    (tmp_path / "work.py").write_text(WORK)
    (tmp_path / "flaky.py").write_text(FLAKY)
    (tmp_path / "pids").mkdir()
    return tmp_path


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {timeout} s")
        time.sleep(0.1)


def running_jobs(workflow: Path) -> list[psutil.Process]:
    """The job processes, once both have started (and written their pids)."""
    wait_for(lambda: len(list((workflow / "pids").iterdir())) == 2, 120, "both jobs to start")
    return [psutil.Process(int(p.read_text())) for p in (workflow / "pids").iterdir()]


def seconds_until_gone(processes: list[psutil.Process], timeout: float = 30) -> float:
    began = time.monotonic()
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    for process in alive:
        process.kill()
    assert not alive, f"{len(alive)} job(s) still running {timeout} s after the signal"
    return time.monotonic() - began


def test_jobs_stop_within_seconds_of_a_sigint_to_snakemake_alone(workflow):
    snakemake = start_snakemake(workflow, "--cores", "2")
    jobs = running_jobs(workflow)
    snakemake.send_signal(signal.SIGINT)  # to Snakemake only, not to its process group
    assert seconds_until_gone(jobs) < 5
    output, _ = snakemake.communicate(timeout=60)
    assert "Terminating processes on user request" in output
    for i in (1, 2):
        log = (workflow / "logs" / f"{i}.log").read_text()
        assert "job interrupted" in log
    # Snakemake ended cleanly: no lock to remove before the next run.
    dry = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1"],
        cwd=workflow,
        capture_output=True,
        text=True,
    )
    assert dry.returncode == 0, dry.stdout + dry.stderr


def test_jobs_stop_on_their_own_when_snakemake_is_killed(workflow):
    snakemake = start_snakemake(workflow, "--cores", "2")
    jobs = running_jobs(workflow)
    snakemake.kill()
    snakemake.communicate(timeout=60)
    assert seconds_until_gone(jobs) < 5
    for i in (1, 2):
        assert "is gone: stopping this job" in (workflow / "logs" / f"{i}.log").read_text()


def test_every_attempt_of_a_job_appends_to_its_log(workflow):
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "1", "flaky.txt"],
        cwd=workflow,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    log = (workflow / "logs" / "flaky.log").read_text()
    assert log.count("job started") == 2
    assert log.index("the first attempt fails") < log.index("the second attempt works")


def test_a_job_outside_a_workflow_watches_nothing():
    """Called by hand (here: by pytest), a job function has no Snakemake to stop with."""
    from regurgitate.jobs.stopping import stop_with_workflow, workflow_chain

    assert workflow_chain() == []
    assert stop_with_workflow() is None


# --- the study's training jobs ----------------------------------------------------------------

TINY = REPO / "tests" / "config" / "tiny.yaml"
# Training that runs until stopped, with a checkpoint every 20 steps.
LONG_TRAINING = "training={max_steps: 1000000, eval_every: 20, patience: 1000000}"
GENERATORS = ["results/generators/weak/model.pt", "results/generators/strong/model.pt"]


def start_study(workdir: Path) -> subprocess.Popen:
    args = ["--configfile", str(TINY), "--cores", "2", "--config", LONG_TRAINING, *GENERATORS]
    return start_snakemake(workdir, *args, snakefile=REPO / "Snakefile")


def training_jobs(snakemake: subprocess.Popen, workdir: Path) -> list[psutil.Process]:
    """Both generators' training jobs, once each has written a checkpoint."""
    checkpoints = [
        workdir / f"results/checkpoints/generators/{g}/last.pt" for g in ("weak", "strong")
    ]
    wait_for(lambda: all(c.exists() for c in checkpoints), 600, "two checkpoints")
    jobs = psutil.Process(snakemake.pid).children(recursive=True)
    assert len([j for j in jobs if "train_model" in " ".join(j.cmdline())]) == 2
    return jobs


@pytest.mark.slow
def test_the_studys_training_jobs_stop_promptly_and_resume(tmp_path):
    """SIGINT to Snakemake alone: both training jobs stop within seconds and keep their
    checkpoints, and the next run resumes from them. Snakemake killed outright: the jobs stop on
    their own, and Snakemake's lock asks for --unlock, after which the study goes on."""
    from conftest import write_toy_corpus

    write_toy_corpus(tmp_path / "data" / "corpus.tsv", 1500)
    snakemake = start_study(tmp_path)
    jobs = training_jobs(snakemake, tmp_path)
    snakemake.send_signal(signal.SIGINT)
    stopped_in = seconds_until_gone(jobs)
    print(f"training jobs gone {stopped_in:.2f} s after SIGINT to Snakemake")
    assert stopped_in < 5
    snakemake.communicate(timeout=60)
    logs = [tmp_path / f"logs/train_generator/{g}.log" for g in ("weak", "strong")]
    assert all("job interrupted" in log.read_text() for log in logs)

    snakemake = start_study(tmp_path)
    jobs = training_jobs(snakemake, tmp_path)
    wait_for(lambda: all("resuming from" in log.read_text() for log in logs), 60, "resuming")
    snakemake.kill()
    snakemake.communicate(timeout=60)
    stopped_in = seconds_until_gone(jobs)
    print(f"training jobs gone {stopped_in:.2f} s after SIGKILL to Snakemake")
    assert stopped_in < 5

    dry = ["--configfile", str(TINY), "-n", *GENERATORS]
    locked = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), *dry],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert locked.returncode != 0 and "--unlock" in locked.stdout + locked.stderr
    for args in (["--unlock"], dry):
        done = subprocess.run(
            [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), *dry[:2], *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    assert os.path.exists(tmp_path / "results/checkpoints/generators/weak/last.pt")
