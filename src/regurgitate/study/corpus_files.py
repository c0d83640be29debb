"""The user's own corpus files (`corpus.tsv`, `corpus.test_tsv`): checked before any job, and
recorded by content so that a file replaced by another with an older modification time still
makes the pools again (Snakemake compares times only)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

from regurgitate.io import write_json
from regurgitate.study.config import ConfigError

LOCAL_CORPUS_KEYS = ("tsv", "test_tsv")


def local_corpus_files(corpus: dict) -> dict[str, str]:
    """`corpus.<key>` -> path of each local corpus file the study reads (none for the formats
    that download theirs)."""
    if corpus["format"] == "multi30k":
        return {}
    return {key: corpus[key] for key in LOCAL_CORPUS_KEYS if corpus.get(key)}


def check_corpus_files(corpus: dict) -> None:
    """A corpus path that is a FIFO, a device or a folder would hang or fail inside a job."""
    for key, path in local_corpus_files(corpus).items():
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            continue  # Snakemake names a missing input itself
        except OSError as err:
            raise ConfigError(f"corpus.{key}: cannot read {path}: {err.strerror}") from None
        if not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else None
            raise ConfigError(
                f"corpus.{key}: {path} is {kind or 'not a regular file'}; point corpus.{key} at "
                "a file of german<TAB>english lines (a named pipe or device would be read "
                "forever, and cannot be read twice)"
            )


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def record_contents(corpus: dict, record: Path, cache: Path) -> None:
    """Write `record` (the SHA-256 of each local corpus file) when it differs from what is
    there, so that `record`, an input of the pools, is newer than them exactly when a file's
    content changed. `cache` keeps each file's size and modification time with its hash, so a
    file is hashed again only when one of those changed."""
    files = local_corpus_files(corpus)
    known = _read(cache)
    hashes, stats = {}, {}
    for key, path in files.items():
        if not os.path.exists(path):
            continue
        info = os.stat(path)
        seen = [info.st_size, info.st_mtime_ns]
        entry = known.get(path)
        hashes[path] = entry["sha256"] if entry and entry["stat"] == seen else sha256_of(path)
        stats[path] = {"stat": seen, "sha256": hashes[path], "key": f"corpus.{key}"}
    if stats != known:
        write_json(stats, cache)
    if hashes != _read(record) or not record.exists():
        write_json(hashes, record)


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
