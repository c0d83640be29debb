import contextlib
import functools
import http.server
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from toy import toy_pair, write_toy_corpus  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
TINY = REPO / "tests" / "config" / "tiny.yaml"


# Fixtures of the tiny study's finished runs (session-scoped). Under pytest-xdist (`-n auto
# --dist loadgroup`, the project's default) the modules whose tests read them run on one worker,
# so that each run is made once per session (and the SLURM module's cluster once).
TINY_STUDY_FIXTURES = {"finished_run", "serial_run"}
TINY_STUDY = "tiny_study"


def pytest_configure(config):
    """One torch thread in each pytest-xdist worker: the workers and the workflows they start
    share the cores, and torch's default of a thread per core in every one of them
    oversubscribes the machine (a 7 s training test took 99 s beside a tiny study)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Group the tests for pytest-xdist by module, the modules that read a tiny-study run in one
    group, and put that group first: it is the suite's longest, so it starts at once."""
    reading = {
        item.module.__name__
        for item in items
        if TINY_STUDY_FIXTURES & set(getattr(item, "fixturenames", ()))
    }
    for item in items:
        module = item.module.__name__
        item.add_marker(pytest.mark.xdist_group(TINY_STUDY if module in reading else module))
    items.sort(key=lambda item: item.module.__name__ not in reading)


@pytest.fixture(scope="session")
def toy_pairs() -> list[tuple[str, str]]:
    import random

    rng = random.Random(0)
    return [toy_pair(rng) for _ in range(600)]


@pytest.fixture(scope="session")
def toy_tokenizer(tmp_path_factory, toy_pairs):
    from regurgitate.engine.tokenizer import Tokenizer, train_tokenizer

    path = tmp_path_factory.mktemp("tok") / "spm.model"
    sentences = [s for pair in toy_pairs for s in pair]
    train_tokenizer(sentences, path, vocab_size=80, max_sentences=10000)
    return Tokenizer(path)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve_directory(root: Path):
    """Serve `root` over HTTP on 127.0.0.1; yields the base URL."""
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


PROGRESS_BAR = re.compile(r"\d+%\|")


def snakemake_command(configfile, *args) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(REPO / "workflow" / "Snakefile")] + [
        "--configfile",
        str(configfile),
        *args,
    ]


def run_snakemake(workdir, configfile, *args, check=True) -> subprocess.CompletedProcess:
    """The workflow as a user runs it, in `workdir`; on failure the error shows its output."""
    command = snakemake_command(configfile, *args)
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(failure_report(result.stdout + result.stderr))
    return result


def failure_report(output: str) -> str:
    """The tail of Snakemake's output without progress bars, which would fill it."""
    lines = [line for line in output.splitlines() if not PROGRESS_BAR.search(line)]
    return "\n".join(lines)[-8000:]


class BackgroundStudy:
    """The tiny study running in `workdir` beside the tests, its output in `workdir/run.log`."""

    def __init__(self, workdir: Path, *args):
        self.workdir = workdir
        write_toy_corpus(workdir / "data" / "corpus.tsv", 1500)
        self.log = (workdir / "run.log").open("w")
        command = snakemake_command(TINY, *args)
        self.process = subprocess.Popen(command, cwd=workdir, stdout=self.log, stderr=self.log)

    def wait(self) -> Path:
        if self.process.wait() != 0:
            raise AssertionError((self.workdir / "run.log").read_text()[-10000:])
        return self.workdir

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait()
        self.log.close()


# What the serial run makes: a run of every condition of E2 from scratch (the second seed, the
# smallest size) and all they need (pools, tokenizer, both generators, their synthetic data and
# the curricula), which run side by side with the rest of the study in `finished_run`.
SERIAL_TARGETS = [
    f"results/runs/scratch/{condition}/100/2/metrics.json"
    for condition in ("real", "gen-weak", "gen-strong")
]


@pytest.fixture(scope="session")
def serial_study(request, tmp_path_factory):
    """A part of the tiny study (SERIAL_TARGETS) with --cores 1: jobs one at a time, in another
    order. Started only when a collected test compares with it (`serial_run`), and before
    `finished_run`, beside it. A part (16 of the study's 164 jobs) keeps the suite in its time;
    tests/test_slurm.py compares another part, run by another executor, with `finished_run`."""
    wanted = any("serial_run" in getattr(i, "fixturenames", ()) for i in request.session.items)
    args = ("--cores", "1", *SERIAL_TARGETS)
    study = BackgroundStudy(tmp_path_factory.mktemp("serial"), *args) if wanted else None
    yield study
    if study:
        study.stop()


@pytest.fixture(scope="session")
def serial_run(serial_study) -> Path:
    return serial_study.wait()


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory, serial_study):
    """The tiny study run to the end on the local executor, once per session: the workflow's
    tests read it, and the cluster tests compare their runs with it."""
    workdir = tmp_path_factory.mktemp("study")
    write_toy_corpus(workdir / "data" / "corpus.tsv", 1500)
    run_snakemake(workdir, TINY, "--cores", "2")
    return workdir


__all__ = [
    "REPO",
    "SERIAL_TARGETS",
    "SHARED_DATA",
    "TINY",
    "run_snakemake",
    "serve_directory",
    "write_toy_corpus",
]
