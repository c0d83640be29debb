"""Logging for workflow jobs: the rule's log file and the terminal both show progress.

Every line names its job by the job's log file under logs/
(`[train_student/scratch/real/1000/1]`: the rule, then its wildcards: experiment, condition,
size, seed), so that the lines of jobs running side by side can be told apart, and a line read
in the terminal leads to its log.

Snakemake deletes a job's log before every attempt, so that a retried or resumed job would lose
the story of the attempt before it (a kill, a failure). A job therefore also writes its log to a
journal beside it (`.<log name>.attempts`), which starts each attempt's log and is removed once
the job succeeds.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from regurgitate.jobs.stopping import stop_with_workflow

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOGS = "logs"


def job_tag(log_path: str | Path) -> str:
    """The job's name in its log lines: its log file's path under logs/, without `.log`."""
    parts = Path(log_path).with_suffix("").parts
    if LOGS in parts[:-1]:
        parts = parts[len(parts) - parts[::-1].index(LOGS) :]
    return "/".join(parts)


def line_format(tag: str | None) -> str:
    if tag is None:
        return FORMAT
    # The format string reads % as a placeholder; a wildcard may hold one.
    return FORMAT.replace("%(levelname)s", f"[{tag.replace('%', '%%')}] %(levelname)s")


def journal_path(log_path: str | Path) -> Path:
    """Where the attempts of a job so far are kept, beside its log."""
    log_path = Path(log_path)
    return log_path.with_name(f".{log_path.name}.attempts")


def setup_logging(log_path: str | Path | None = None, level: int = logging.INFO) -> None:
    """Log to stderr and, when given, to `log_path` and its journal; the log starts with what
    the journal holds of earlier attempts."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    tag = None if log_path is None else job_tag(log_path)
    if log_path is not None:
        log_path, journal = Path(log_path), journal_path(log_path)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not log_path.exists() or log_path.stat().st_size == 0
        if fresh and journal.exists():
            shutil.copyfile(journal, log_path)
        for path in (log_path, journal):
            handlers.append(logging.FileHandler(path, mode="a", encoding="utf-8"))
    logging.basicConfig(level=level, format=line_format(tag), handlers=handlers, force=True)


@contextlib.contextmanager
def job(log_path: str | Path | None, threads: int | None = None):
    """Log to the rule's log file and the terminal; a failure's traceback lands in the log too.
    Every attempt of the job appends to the log; the job stops when its Snakemake is gone (see
    regurgitate.jobs.stopping)."""
    setup_logging(log_path)
    logger = logging.getLogger("regurgitate")
    # The CPU seconds so far are the job's start-up: the interpreter, its imports, the preamble.
    logger.info(
        "job started (process %d, %.1f s of CPU to start)", os.getpid(), time.process_time()
    )
    in_workflow = stop_with_workflow() is not None
    if threads is not None:
        # Only the jobs that run a model pass threads: the many curricula and table jobs start
        # without torch's import.
        import torch

        # One job's torch threads never exceed what Snakemake granted it.
        torch.set_num_threads(max(1, int(threads)))
    try:
        yield logger
    except KeyboardInterrupt:
        logger.warning("job interrupted; what it finished (checkpoints included) is kept")
        if in_workflow:
            _die_of_interrupt()
        raise
    except Exception:
        logger.exception("job failed")
        raise
    if log_path is not None:
        _close_journal(journal_path(log_path))


def _die_of_interrupt() -> None:
    """End the process now, as an interrupt does, without Python's clean-up at exit: the
    interrupt has unwound the job (its temporary files are gone, its checkpoints whole), and
    tearing down the modules of torch and the rest takes seconds of CPU that a stopping
    workflow should not wait for."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)


def _close_journal(journal: Path) -> None:
    """Stop logging to a succeeded job's journal and remove it."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.FileHandler) and handler.baseFilename == os.path.abspath(
            journal
        ):
            root.removeHandler(handler)
            handler.close()
    journal.unlink(missing_ok=True)
