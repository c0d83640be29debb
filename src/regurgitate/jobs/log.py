"""Logging for workflow jobs: the rule's log file and the terminal both show progress."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path

from regurgitate.jobs.stopping import stop_with_workflow

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(log_path: str | Path | None = None, level: int = logging.INFO) -> None:
    """Log to stderr and, when given, to `log_path`; a log file is appended to, so that it keeps
    the story of every attempt of its job (a killed one, a retry, the resumed run)."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="a", encoding="utf-8"))
    logging.basicConfig(level=level, format=FORMAT, handlers=handlers, force=True)


@contextlib.contextmanager
def job(log_path: str | Path | None, threads: int | None = None):
    """Log to the rule's log file and the terminal; a failure's traceback lands in the log too.
    The job stops when its Snakemake is gone (see regurgitate.jobs.stopping)."""
    setup_logging(log_path)
    logger = logging.getLogger("regurgitate")
    logger.info("job started (process %d)", os.getpid())
    stop_with_workflow()
    if threads is not None:
        import torch

        # One job's torch threads never exceed what Snakemake granted it.
        torch.set_num_threads(max(1, int(threads)))
    try:
        yield logger
    except KeyboardInterrupt:
        logger.warning("job interrupted; what it finished (checkpoints included) is kept")
        raise
    except Exception:
        logger.exception("job failed")
        raise
