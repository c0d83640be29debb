"""Whole-or-nothing file output: write to a temporary name beside the target, then rename.

A temporary file is named `.<target name>.<pid>.<random>.tmp`, so that the next write of the same
target can remove what a killed writer left behind (its process is gone) without touching the
file of a writer that is still running. The renamed file gets the permissions the user's umask
gives a new file, as a plain `open` would, not the 0600 of a temporary file. A write that fails
because the disk is full raises `DiskFullError`, which says so.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import polars.selectors as cs

# The errors of a file system without room: no space left, or the user's quota exceeded.
_NO_ROOM = (errno.ENOSPC, errno.EDQUOT)


class DiskFullError(OSError):
    """Writing an output failed because its file system has no room left."""


def _process_umask() -> int:
    """The umask, read without changing it where the system allows (os.umask sets it, which would
    race with threads creating files)."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        status = Path("/proc/self/status").read_text().splitlines()
        return int(next(line for line in status if line.startswith("Umask:")).split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The permissions a file created now with open() would get."""
    return 0o666 & ~_process_umask()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary files of earlier writes of `path` whose writer has gone (killed);
    return them."""
    path = Path(path)
    prefix = f".{path.name}."
    removed = []
    if not path.parent.is_dir():
        return removed
    for candidate in path.parent.glob(f"{glob.escape(prefix)}*.tmp"):
        writer = candidate.name[len(prefix) :].split(".", 1)[0]
        if writer.isdigit() and int(writer) == os.getpid():
            continue  # this process's own write (reentrant use)
        if writer.isdigit() and _alive(int(writer)):
            continue
        candidate.unlink(missing_ok=True)
        removed.append(candidate)
    return removed


def _no_room(error: BaseException) -> bool:
    """Whether `error`, or an error it was raised from or while handling, is a full disk (torch
    reports one as a RuntimeError raised while handling the OSError)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in _NO_ROOM:
            return True
        error = error.__cause__ or error.__context__
    return False


def _disk_full(path: Path, error: BaseException) -> DiskFullError:
    free = shutil.disk_usage(path.parent).free
    return DiskFullError(
        errno.ENOSPC,
        f"the disk is full: writing {path} failed with {free} bytes left on its file system "
        f"({os.strerror(getattr(error, 'errno', None) or errno.ENOSPC)}); free some space and "
        "run again, finished outputs and checkpoints are kept",
    )


# How often a writer makes its folder again after a concurrent `remove_empty_folders` took a
# parent from under it; each retry needs another job to empty and remove that parent in between.
_FOLDER_ATTEMPTS = 20


def make_folder(folder: str | os.PathLike) -> Path:
    """`mkdir -p` that withstands `remove_empty_folders` in another job: that job may remove an
    empty parent between the moment this one makes it and the moment it makes the child."""
    folder = Path(folder)
    for attempt in range(_FOLDER_ATTEMPTS):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            return folder
        except FileNotFoundError:
            if attempt == _FOLDER_ATTEMPTS - 1:
                raise
    return folder


def remove_empty_folders(folder: str | os.PathLike, *, up_to: str | os.PathLike) -> None:
    """Remove `folder`, then its parents up to `up_to` (itself included), while they are empty.
    Jobs that run side by side share parents: os.rmdir removes only an empty folder, so one that
    holds another job's files stays, and a writer makes its folders again right before it writes
    (`make_folder`, `atomic_path`)."""
    folder, up_to = Path(os.path.abspath(folder)), Path(os.path.abspath(up_to))
    if folder != up_to and up_to not in folder.parents:
        raise ValueError(f"{folder} does not lie in {up_to}")
    while True:
        try:
            folder.rmdir()
        except FileNotFoundError:
            pass  # another job removed it: its parent may be empty now
        except OSError:
            return  # not empty (another job's files), or not ours to remove
        if folder == up_to:
            return
        folder = folder.parent


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's directory; rename it onto `path` on success."""
    path = Path(path)
    # Only a finished run's checkpoint folders are removed (remove_checkpoints), and a run's own
    # folder is no other run's parent: once made, it stays until this write is done.
    make_folder(path.parent)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, new_file_mode())
        os.replace(tmp_path, path)
    except BaseException as err:
        if _no_room(err):
            raise _disk_full(path, err) from err
        raise
    finally:
        tmp_path.unlink(missing_ok=True)


def write_parquet(frame: pl.DataFrame, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        frame.write_parquet(tmp)


def read_json(path: str | os.PathLike) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_json(data: object, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def read_lines(path: str | os.PathLike) -> list[str]:
    """The lines of a text file written by write_lines."""
    return Path(path).read_text(encoding="utf-8").splitlines()


def write_lines(lines: list[str], path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


# p-values keep this many decimals in tables: the smallest a 1,000-resample bootstrap can give
# is 0.001, which two decimals would print as 0.
P_VALUE_DECIMALS = 4


def write_table(summary: pl.DataFrame, path: str | os.PathLike, decimals: int = 2) -> None:
    """Write `summary` as CSV, floats rounded to `decimals` (columns named p_* to
    P_VALUE_DECIMALS); the file appears whole or not at all.

    Nulls (e.g. the interval of a single seed) are written as empty fields.
    """
    p_values = cs.starts_with("p_") & cs.float()
    rounded = summary.with_columns(
        (cs.float() - p_values).round(decimals),
        p_values.round(P_VALUE_DECIMALS).map_elements(
            lambda p: f"{p:.{P_VALUE_DECIMALS}f}", return_dtype=pl.String
        ),
    )
    with atomic_path(path) as tmp:
        # float_precision keeps 12.0 as "12.00", so the columns line up as a reader expects.
        rounded.write_csv(tmp, float_precision=decimals)
