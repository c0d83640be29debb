"""Logging for workflow jobs: the rule's log file and the terminal both show progress."""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(log_path: str | Path | None = None, level: int = logging.INFO) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w", encoding="utf-8"))
    logging.basicConfig(level=level, format=FORMAT, handlers=handlers, force=True)


@contextlib.contextmanager
def job(log_path: str | Path | None, threads: int | None = None):
    """Log to the rule's log file and the terminal; a failure's traceback lands in the log too."""
    setup_logging(log_path)
    if threads is not None:
        import torch

        # One job's torch threads never exceed what Snakemake granted it.
        torch.set_num_threads(max(1, int(threads)))
    try:
        yield logging.getLogger("regurgitate")
    except Exception:
        logging.getLogger("regurgitate").exception("job failed")
        raise
