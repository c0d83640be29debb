import contextlib
import functools
import http.server
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


def run_snakemake(workdir, configfile, *args, check=True) -> subprocess.CompletedProcess:
    """The workflow as a user runs it, in `workdir`; on failure the error shows its output."""
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "--configfile",
        str(configfile),
        *args,
    ]
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(result.stdout[-5000:] + result.stderr[-5000:])
    return result


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """The tiny study run to the end on the local executor, once per session: the workflow's
    tests read it, and the cluster tests compare their runs with it."""
    workdir = tmp_path_factory.mktemp("study")
    write_toy_corpus(workdir / "data" / "corpus.tsv", 1500)
    run_snakemake(workdir, TINY, "--cores", "2")
    return workdir


__all__ = ["REPO", "SHARED_DATA", "TINY", "run_snakemake", "serve_directory", "write_toy_corpus"]
