"""Download a file whole or not at all, verified against its SHA-256 checksum."""

from __future__ import annotations

import hashlib
import http.client
import logging
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

from regurgitate.io import atomic_path

log = logging.getLogger(__name__)

# Without a Content-Length there are no percentages; report progress every this many bytes.
PROGRESS_BYTES_UNKNOWN_TOTAL = 64 << 20


class DownloadError(RuntimeError):
    """A download failed (HTTP or connection error, truncation, checksum mismatch). `transient`
    says whether trying again may help: a network failure may pass, a wrong checksum or a
    missing file will not."""

    def __init__(self, message: str, transient: bool = False):
        super().__init__(message)
        self.transient = transient


# HTTP statuses worth another attempt: the server is busy or failing, not the request wrong.
RETRY_STATUS = {408, 429}  # and every 5xx


def file_sha256(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _normalise_checksum(sha256: str | None) -> str | None:
    return None if sha256 is None else sha256.strip().lower()


def _content_length(response: http.client.HTTPResponse) -> int | None:
    value = response.headers.get("Content-Length")
    return int(value) if value and value.isdigit() else None


class _ProgressLog:
    """Log bytes received: every ~10% of the total, or every fixed step when it is unknown."""

    def __init__(self, url: str, total: int | None) -> None:
        self.url = url
        self.total = total
        self.step = max(total // 10, 1) if total else PROGRESS_BYTES_UNKNOWN_TOTAL
        self.next_report = self.step

    def update(self, received: int) -> None:
        if received < self.next_report:
            return
        if self.total:
            log.info(
                "%s: %d of %d bytes (%.0f%%)",
                self.url,
                received,
                self.total,
                100 * received / self.total,
            )
        else:
            log.info("%s: %d bytes", self.url, received)
        while self.next_report <= received:
            self.next_report += self.step


def _stream_to_file(
    response: IO[bytes], out: IO[bytes], url: str, total: int | None, chunk_size: int
) -> tuple[int, str]:
    """Copy the response body to `out`; return the byte count and its hex SHA-256."""
    digest = hashlib.sha256()
    received = 0
    progress = _ProgressLog(url, total)
    while chunk := response.read(chunk_size):
        out.write(chunk)
        digest.update(chunk)
        received += len(chunk)
        progress.update(received)
    return received, digest.hexdigest()


def _already_present(dest: Path, expected: str | None) -> bool:
    if not dest.is_file():
        return False
    if expected is None:
        log.info("%s exists and no checksum is given: keeping it", dest)
        return True
    actual = file_sha256(dest)
    if actual == expected:
        log.info("%s exists with the expected checksum: skipping the download", dest)
        return True
    log.warning(
        "%s exists but its SHA-256 is %s, expected %s: downloading it again", dest, actual, expected
    )
    return False


def download(
    url: str,
    dest: str | Path,
    sha256: str | None,
    *,
    timeout: float = 60,
    chunk_size: int = 1 << 20,
    attempts: int = 3,
    backoff_seconds: float = 10.0,
) -> Path:
    """Download `url` to `dest`, verifying the SHA-256 when given; return `dest`.

    The body is written to a temporary file beside `dest` and renamed only once complete and
    verified, so `dest` never holds a partial or wrong file. If `dest` already holds the
    expected file, nothing is downloaded. A network failure (connection, timeout, truncated
    body, HTTP 5xx, 408, 429) is tried again, up to `attempts` in all, after `backoff_seconds`
    doubling each time; a checksum mismatch or another HTTP error fails at once: the same bytes
    would come again.
    """
    dest = Path(dest)
    expected = _normalise_checksum(sha256)
    if _already_present(dest, expected):
        return dest
    for attempt in range(1, attempts + 1):
        try:
            return _fetch(url, dest, expected, timeout, chunk_size)
        except DownloadError as err:
            if not err.transient or attempt == attempts:
                raise
            delay = backoff_seconds * 2 ** (attempt - 1)
            log.warning("%s; attempt %d of %d in %.0f s", err, attempt + 1, attempts, delay)
            time.sleep(delay)
    raise AssertionError("unreachable: the last attempt returns or raises")


def _fetch(url: str, dest: Path, expected: str | None, timeout: float, chunk_size: int) -> Path:
    """One attempt of `download`."""
    log.info("downloading %s to %s", url, dest)
    failed = f"download of {url} failed"
    try:
        with (
            urllib.request.urlopen(url, timeout=timeout) as response,
            atomic_path(dest) as tmp,
            tmp.open("wb") as out,
        ):
            total = _content_length(response)
            received, actual = _stream_to_file(response, out, url, total, chunk_size)
            if total is not None and received != total:
                raise DownloadError(
                    f"download of {url} is truncated: received {received} of {total} bytes",
                    transient=True,
                )
            if expected is not None and actual != expected:
                raise DownloadError(
                    f"checksum mismatch for {url}: expected SHA-256 {expected}, got {actual}"
                )
    except urllib.error.HTTPError as err:
        transient = err.code in RETRY_STATUS or err.code >= 500
        raise DownloadError(f"{failed}: HTTP {err.code} {err.reason}", transient) from None
    except urllib.error.URLError as err:
        # A refused connection or a failed name lookup may pass; a missing local file will not.
        transient = isinstance(err.reason, OSError) and not isinstance(
            err.reason, FileNotFoundError | PermissionError | IsADirectoryError
        )
        raise DownloadError(f"{failed}: {err.reason}", transient) from None
    except (http.client.HTTPException, TimeoutError, ConnectionError) as err:
        raise DownloadError(f"{failed}: {type(err).__name__}: {err}", transient=True) from None

    log.info("downloaded %s (%d bytes, SHA-256 %s)", dest, received, actual)
    return dest
