"""Whole-or-nothing file output: write to a temporary name beside the target, then rename."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import polars.selectors as cs


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's directory; rename it onto `path` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
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
