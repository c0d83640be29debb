"""Jobs stop with their Snakemake: promptly after a SIGINT that reaches Snakemake alone, and on
their own when Snakemake is killed outright; every attempt of a job appends to its log.

A small workflow whose jobs run in `job()` and loop until stopped stands for any job; the slow
test at the end does the same to the study's training jobs."""

from __future__ import annotations

import contextlib
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


STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def no_process_left():
    """Whatever a failing test leaves running (Snakemake and its jobs) is killed after it."""
    yield
    while STARTED:
        snakemake = STARTED.pop()
        with contextlib.suppress(psutil.Error):
            for process in psutil.Process(snakemake.pid).children(recursive=True):
                process.kill()
        snakemake.kill()
        snakemake.wait()


def start_snakemake(workdir: Path, *args: str, snakefile: Path | None = None) -> subprocess.Popen:
    """Snakemake in the background, its output (and its jobs') appended to workdir/output.txt:
    a pipe nobody reads while it runs would fill up and stall the jobs' logging."""
    command = [sys.executable, "-m", "snakemake", "-s", str(snakefile or workdir / "Snakefile")]
    with (workdir / "output.txt").open("a") as output:
        snakemake = subprocess.Popen(
            [*command, *args],
            cwd=workdir,
            stdout=output,
            stderr=subprocess.STDOUT,
            preexec_fn=default_sigint,
        )
    STARTED.append(snakemake)
    return snakemake


def output(workdir: Path) -> str:
    return (workdir / "output.txt").read_text()


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


def snakemake_now(
    workdir: Path, *args: str, snakefile: Path = REPO / "workflow" / "Snakefile"
) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "-s", str(snakefile), *args]
    return subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=300)


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
    snakemake.wait(timeout=60)
    assert "Terminating processes on user request" in output(workflow)
    for i in (1, 2):
        log = (workflow / "logs" / f"{i}.log").read_text()
        assert "job interrupted" in log
    # Snakemake ended cleanly: no lock to remove before the next run.
    dry = snakemake_now(workflow, "-n", "--cores", "1", snakefile=workflow / "Snakefile")
    assert dry.returncode == 0, dry.stdout + dry.stderr


def test_jobs_stop_on_their_own_when_snakemake_is_killed(workflow):
    snakemake = start_snakemake(workflow, "--cores", "2")
    jobs = running_jobs(workflow)
    snakemake.kill()
    snakemake.wait(timeout=60)
    assert seconds_until_gone(jobs) < 5
    for i in (1, 2):
        assert "is gone: stopping this job" in (workflow / "logs" / f"{i}.log").read_text()


def test_every_attempt_of_a_job_appends_to_its_log(workflow):
    done = snakemake_now(workflow, "--cores", "1", "flaky.txt", snakefile=workflow / "Snakefile")
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
# Training that runs until stopped, with a checkpoint every 20 steps (a second config file
# updates the first key by key).
LONG_TRAINING = (
    "training: {max_steps: 1000000, max_epochs: 1000000, eval_every: 20, patience: 1000000}\n"
)
GENERATOR_NAMES = ["weak", "strong"]
GENERATORS = [f"results/generators/{g}/model.pt" for g in GENERATOR_NAMES]


def start_study(workdir: Path) -> subprocess.Popen:
    (workdir / "long.yaml").write_text(LONG_TRAINING)
    args = [*GENERATORS, "--configfile", str(TINY), "long.yaml", "--cores", "2"]
    return start_snakemake(workdir, *args, snakefile=REPO / "workflow" / "Snakefile")


def training_jobs(snakemake: subprocess.Popen, workdir: Path, ready, what: str) -> list:
    """The processes of Snakemake's jobs once `ready()`: both generators' training among them."""
    wait_for(ready, 600, what)
    jobs = psutil.Process(snakemake.pid).children(recursive=True)
    commands = [" ".join(job.cmdline()) for job in jobs]
    assert len([c for c in commands if "train_model" in c]) == 2, (commands, output(workdir))
    return jobs


def text(path: Path) -> str:
    """A file's text, empty while it is missing (Snakemake deletes a job's log before the job)."""
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


@pytest.mark.slow
def test_the_studys_training_jobs_stop_promptly_and_resume(tmp_path):
    """SIGINT to Snakemake alone: both training jobs stop within seconds and keep their
    checkpoints, and the next run resumes from them. Snakemake killed outright: the jobs stop on
    their own, and Snakemake's lock asks for --unlock, after which the study goes on."""
    from conftest import write_toy_corpus

    write_toy_corpus(tmp_path / "data" / "corpus.tsv", 1500)
    checkpoints = [
        tmp_path / f"results/checkpoints/generators/{g}/last.pt" for g in GENERATOR_NAMES
    ]
    logs = [tmp_path / f"logs/train_generator/{g}.log" for g in GENERATOR_NAMES]

    snakemake = start_study(tmp_path)
    jobs = training_jobs(
        snakemake, tmp_path, lambda: all(c.exists() for c in checkpoints), "two checkpoints"
    )
    snakemake.send_signal(signal.SIGINT)
    stopped_in = seconds_until_gone(jobs)
    print(f"training jobs gone {stopped_in:.2f} s after SIGINT to Snakemake")
    assert stopped_in < 5
    snakemake.wait(timeout=60)
    assert all("job interrupted" in log.read_text() for log in logs)
    assert all(c.exists() for c in checkpoints)

    snakemake = start_study(tmp_path)
    jobs = training_jobs(
        snakemake,
        tmp_path,
        lambda: all("resuming from" in text(log) for log in logs),
        "both jobs to resume from their checkpoints",
    )
    snakemake.kill()
    snakemake.wait(timeout=60)
    stopped_in = seconds_until_gone(jobs)
    print(f"training jobs gone {stopped_in:.2f} s after SIGKILL to Snakemake")
    assert stopped_in < 5
    for log in logs:  # the log holds both attempts
        story = log.read_text()
        assert story.count("job started") == 2 and "is gone: stopping this job" in story

    # The killed Snakemake's lock stays: a run that would write the same files is refused
    # (a dry run checks no lock), until --unlock; then the study goes on.
    study = ["--configfile", str(TINY), "long.yaml", "--cores", "1", *GENERATORS]
    locked = snakemake_now(tmp_path, *study)
    assert locked.returncode != 0
    assert "--unlock" in locked.stdout + locked.stderr
    assert snakemake_now(tmp_path, "--configfile", str(TINY), "--unlock").returncode == 0
    dry = snakemake_now(tmp_path, *study, "-n")
    assert dry.returncode == 0 and "train_generator" in dry.stdout, dry.stdout + dry.stderr
    assert all(c.exists() for c in checkpoints)
