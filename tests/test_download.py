"""download(): checksums, HTTP errors and the skip-if-present rule, against a local HTTP server."""

from __future__ import annotations

import hashlib
import io
import socket
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import serve_directory

from regurgitate.study.corpus import read_europarl_archive
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
        download(url, tmp_path / "de-en.tgz", None, timeout=5)
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
