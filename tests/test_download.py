"""download(): checksums, HTTP errors and the skip-if-present rule, against a local HTTP server;
and a multi30k corpus downloaded file by file and split into the pools."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.server
import io
import socket
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from conftest import serve_directory

from regurgitate.jobs.data import download_corpus, prepare_pools
from regurgitate.study.config import corpus_downloads
from regurgitate.study.corpus import POOLS, read_europarl_archive
from regurgitate.study.download import DownloadError, download

DE_MEMBER = "training/europarl-v7.de-en.de"
EN_MEMBER = "training/europarl-v7.de-en.en"
DE_LINES = ["Wiederaufnahme der Sitzungsperiode", "Ich bitte Sie, sich zu erheben.", "Danke."]
EN_LINES = ["Resumption of the session", "Please rise, then.", "Thank you."]


def _add_member(tar: tarfile.TarFile, name: str, lines: list[str]) -> None:
    data = "".join(f"{line}\n" for line in lines).encode("utf-8")
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A directory holding `de-en.tgz`, served over HTTP; yields (base URL, archive path)."""
    root = tmp_path / "served"
    root.mkdir()
    archive = root / "de-en.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        _add_member(tar, DE_MEMBER, DE_LINES)
        _add_member(tar, EN_MEMBER, EN_LINES)

    with serve_directory(root) as url:
        yield url, archive


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_download_with_correct_checksum(served, tmp_path):
    base, archive = served
    dest = tmp_path / "downloads" / "de-en.tgz"
    result = download(f"{base}/de-en.tgz", dest, _sha256(archive), chunk_size=64)
    assert result == dest
    assert dest.read_bytes() == archive.read_bytes()
    assert _leftovers(dest.parent) == ["de-en.tgz"]


def test_download_without_checksum(served, tmp_path):
    base, archive = served
    dest = tmp_path / "de-en.tgz"
    download(f"{base}/de-en.tgz", dest, None)
    assert dest.read_bytes() == archive.read_bytes()


def test_checksum_is_case_insensitive(served, tmp_path):
    base, archive = served
    dest = tmp_path / "de-en.tgz"
    download(f"{base}/de-en.tgz", dest, _sha256(archive).upper())
    assert dest.exists()


def test_wrong_checksum_leaves_nothing(served, tmp_path):
    base, archive = served
    dest_dir = tmp_path / "downloads"
    dest = dest_dir / "de-en.tgz"
    url = f"{base}/de-en.tgz"
    wrong = "0" * 64
    with pytest.raises(DownloadError) as caught:
        download(url, dest, wrong)
    message = str(caught.value)
    assert url in message
    assert wrong in message
    assert _sha256(archive) in message
    assert not dest.exists()
    assert _leftovers(dest_dir) == []


def test_http_404(served, tmp_path):
    base, _ = served
    dest = tmp_path / "missing.tgz"
    url = f"{base}/missing.tgz"
    with pytest.raises(DownloadError, match="404") as caught:
        download(url, dest, None)
    assert url in str(caught.value)
    assert not dest.exists()
    assert _leftovers(tmp_path) == ["served"]


def test_connection_refused(tmp_path):
    # A port that was free a moment ago: nothing listens on it.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/de-en.tgz"
    with pytest.raises(DownloadError) as caught:
        download(url, tmp_path / "de-en.tgz", None, timeout=5, backoff_seconds=0)
    assert url in str(caught.value)
    assert _leftovers(tmp_path) == []


def test_existing_file_with_matching_checksum_is_kept(served, tmp_path):
    base, archive = served
    dest = tmp_path / "de-en.tgz"
    dest.write_bytes(archive.read_bytes())
    # An unreachable URL proves that nothing is fetched.
    download(f"{base}/no-such-file.tgz", dest, _sha256(archive))
    assert dest.read_bytes() == archive.read_bytes()


def test_existing_file_with_wrong_checksum_is_replaced(served, tmp_path):
    base, archive = served
    dest = tmp_path / "de-en.tgz"
    dest.write_bytes(b"stale partial download")
    download(f"{base}/de-en.tgz", dest, _sha256(archive))
    assert dest.read_bytes() == archive.read_bytes()


def test_download_then_read_archive(served, tmp_path):
    base, archive = served
    dest = download(f"{base}/de-en.tgz", tmp_path / "de-en.tgz", _sha256(archive))
    pairs = list(read_europarl_archive(dest, DE_MEMBER, EN_MEMBER))
    assert pairs == [
        (i, de, en) for i, (de, en) in enumerate(zip(DE_LINES, EN_LINES, strict=True), start=1)
    ]


# --- a multi30k corpus: <split>.<de|en>.gz, one download each --------------------------------

TRAIN = [
    (f"Ein Hund rennt über die Wiese {i}.", f"A dog runs across the meadow {i}.") for i in range(40)
]
TEST = [
    ("Zwei Kinder spielen.", "Two children are playing."),
    ("Eine Frau liest.", "A woman reads."),
]


@pytest.fixture
def multi30k(tmp_path: Path) -> Iterator[tuple[dict, Path]]:
    """Gzipped train and test splits served over HTTP; yields (corpus config, served folder).

    val.de.gz is served too, but has no checksum and is not a file of the corpus.
    """
    root = tmp_path / "raw"
    root.mkdir()
    for split, pairs in (("train", TRAIN), ("test_2016_flickr", TEST), ("val", TEST)):
        for side, lang in enumerate(("de", "en")):
            text = "".join(pair[side] + "\n" for pair in pairs)
            (root / f"{split}.{lang}.gz").write_bytes(gzip.compress(text.encode("utf-8")))
    with serve_directory(root) as url:
        corpus = {
            "format": "multi30k",
            "base_url": f"{url}/",
            "train_split": "train",
            "test_split": "test_2016_flickr",
            "sha256s": {
                path.name: _sha256(path) for path in root.iterdir() if path.name[:3] != "val"
            },
        }
        yield corpus, root


def test_multi30k_is_downloaded_checked_and_split(multi30k, tmp_path):
    corpus, root = multi30k
    downloads = corpus_downloads(corpus)
    assert sorted(downloads) == sorted(corpus["sha256s"])
    base = corpus["base_url"].rstrip("/")
    assert downloads["train.de.gz"] == (f"{base}/train.de.gz", corpus["sha256s"]["train.de.gz"])

    local = tmp_path / "resources" / "corpus" / "multi30k"
    paths = [
        download_corpus(url=url, out=local / name, sha256=sha256)
        for name, (url, sha256) in downloads.items()
    ]
    assert _leftovers(local) == sorted(downloads)
    for path in paths:
        assert path.read_bytes() == (root / path.name).read_bytes()

    out_dir = tmp_path / "pools"
    cleaning = {"min_words": 1, "max_words": 40, "max_length_ratio": 3.0}
    sizes = {"test": 0, "dev": 5, "detector": 5, "student": 10, "teacher": None}
    report = prepare_pools(
        corpus=corpus,
        cleaning=cleaning,
        sizes=sizes,
        seed=1,
        out_dir=out_dir,
        report_path=out_dir / "cleaning.json",
        archive=None,
        parallel=paths,
    )
    assert report["corpus"]["read"] == 40 and report["test"]["read"] == 2
    assert report["pools"] == {"teacher": 20, "student": 10, "detector": 5, "dev": 5, "test": 2}
    pools = {pool: pl.read_parquet(out_dir / f"{pool}.parquet") for pool in POOLS}
    assert list(zip(pools["test"]["source"], pools["test"]["target"], strict=True)) == TEST
    training = pl.concat(pools[pool] for pool in POOLS if pool != "test")
    assert sorted(zip(training["source"], training["target"], strict=True)) == sorted(TRAIN)


def test_multi30k_wrong_checksum_names_the_file_and_leaves_nothing(multi30k, tmp_path):
    corpus, root = multi30k
    wrong = "ab" * 32
    corpus["sha256s"]["test_2016_flickr.en.gz"] = wrong
    url, sha256 = corpus_downloads(corpus)["test_2016_flickr.en.gz"]
    local = tmp_path / "resources" / "corpus" / "multi30k"
    with pytest.raises(DownloadError) as caught:
        download_corpus(url=url, out=local / "test_2016_flickr.en.gz", sha256=sha256)
    message = str(caught.value)
    assert "test_2016_flickr.en.gz" in message
    assert wrong in message
    assert _sha256(root / "test_2016_flickr.en.gz") in message
    assert _leftovers(local) == []


# --- what is tried again ----------------------------------------------------------------------


@contextlib.contextmanager
def flaky_server(body: bytes, failures: list[int | None]):
    """Serve `body` at /file; the n-th request first fails as failures[n] says (an HTTP status,
    or None: the connection is dropped without an answer), then requests succeed. Yields (URL,
    the list of request paths received)."""
    received = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            received.append(self.path)
            failure = failures[len(received) - 1] if len(received) <= len(failures) else 0
            if failure is None:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if failure:
                self.send_error(failure)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/file", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


BODY = b"corpus bytes " * 100


@pytest.mark.parametrize("failures", [[503], [None], [429, 502]], ids=["503", "dropped", "429+502"])
def test_network_failures_are_tried_again(tmp_path, failures):
    with flaky_server(BODY, failures) as (url, received):
        download(url, tmp_path / "c.tgz", hashlib.sha256(BODY).hexdigest(), backoff_seconds=0)
    assert (tmp_path / "c.tgz").read_bytes() == BODY
    assert len(received) == len(failures) + 1


def test_network_failures_give_up_after_the_last_attempt(tmp_path):
    with (
        flaky_server(BODY, [503] * 5) as (url, received),
        pytest.raises(DownloadError, match="HTTP 503"),
    ):
        download(url, tmp_path / "c.tgz", None, attempts=3, backoff_seconds=0)
    assert len(received) == 3
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(("failures", "error"), [([], "checksum mismatch"), ([404], "HTTP 404")])
def test_a_wrong_checksum_or_missing_file_is_not_tried_again(tmp_path, failures, error):
    with flaky_server(BODY, failures) as (url, received), pytest.raises(DownloadError, match=error):
        download(url, tmp_path / "c.tgz", "0" * 64, backoff_seconds=0)
    assert len(received) == 1
    assert _leftovers(tmp_path) == []
