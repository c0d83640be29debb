"""Jobs stop with the Snakemake that runs them.

Two ways a job could outlive its workflow: Snakemake gets SIGINT on its own (`kill -INT`, a
scheduler, a harness; a Ctrl-C in a terminal reaches the jobs too) and then waits for the running
jobs to finish, however long they take; or Snakemake is killed outright and its jobs run on as
orphans, training or paying for API requests nobody will collect. `forward_interrupts`, which the
workflow installs in the Snakemake process, passes SIGINT on to every job; `stop_with_workflow`,
which every job's `job()` context installs, stops the job when the Snakemake above it is gone.
A stopped job leaves what it had finished: checkpoints are written whole or not at all, and the
next run resumes from the last one.
"""

from __future__ import annotations

import _thread
import contextlib
import logging
import os
import signal
import socket
import threading
import time
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

# How often a job looks for its Snakemake, and how long a stopped job may take to unwind (the
# main thread sees the interrupt at its next Python instruction) before it is ended outright.
POLL_SECONDS = 0.5
GRACE_SECONDS = 10.0


def _is_snakemake(process: psutil.Process) -> bool:
    """Whether `process` runs Snakemake: `snakemake ...` or `python -m snakemake ...`."""
    try:
        command = process.cmdline()
    except psutil.Error:
        return False
    return any(Path(arg).name == "snakemake" for arg in command[:3])


def workflow_chain(process: psutil.Process | None = None) -> list[psutil.Process]:
    """The ancestors of `process` (this one by default) up to the nearest Snakemake, that one
    included: a job's launcher (Snakemake itself, or a shell it started) and Snakemake. Empty
    when no Snakemake is among the ancestors (a job function called outside a workflow)."""
    process = process or psutil.Process()
    chain = []
    for ancestor in process.parents():
        chain.append(ancestor)
        if _is_snakemake(ancestor):
            return chain
    return []


def _watch(chain: list[psutil.Process], parent: int) -> None:
    while os.getppid() == parent and all(p.is_running() for p in chain):
        time.sleep(POLL_SECONDS)
    log.warning(
        "Snakemake (process %d) is gone: stopping this job; its checkpoints are kept",
        chain[-1].pid,
    )
    _thread.interrupt_main()  # KeyboardInterrupt in the main thread: the job unwinds
    time.sleep(GRACE_SECONDS)
    log.error("the job did not stop within %.0f s of the interrupt: ending it", GRACE_SECONDS)
    logging.shutdown()
    os._exit(1)


def stop_with_workflow() -> threading.Thread | None:
    """Stop this process (KeyboardInterrupt in the main thread, then exit) as soon as the
    Snakemake that started it, or the process between them, has gone; returns the watching
    thread, or None outside a workflow. Call it from the main thread."""
    chain = workflow_chain()
    if not chain:
        return None
    # An interrupt must reach the job even where SIGINT came ignored from the parent (Snakemake
    # started in the background by a script): interrupt_main() needs Python's handler.
    with contextlib.suppress(ValueError):  # not the main thread: leave it as it is
        signal.signal(signal.SIGINT, signal.default_int_handler)
    watcher = threading.Thread(
        target=_watch, args=(chain, os.getppid()), name="stop-with-workflow", daemon=True
    )
    watcher.start()
    return watcher


def forward_interrupts() -> None:
    """Pass every SIGINT this process gets on to the processes it started, at once; Python then
    handles it as before (Snakemake stops scheduling and waits for its jobs, which are stopping
    already). Call it from the main thread of the Snakemake process (the workflow does, in
    workflow/rules/common.smk); an ignored SIGINT stays ignored.

    The forwarding runs in a thread of its own, woken through Python's signal wakeup file: a
    Python signal handler only runs when the main thread gets to run Python code, and Snakemake's
    main thread sleeps on a lock while its jobs run, where a signal that the system delivered to
    another thread never wakes it."""
    if signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, signal.SIG_DFL, None):
        return
    receiver, sender = socket.socketpair()
    sender.setblocking(False)
    try:
        earlier = signal.set_wakeup_fd(sender.fileno(), warn_on_full_buffer=False)
    except ValueError:  # not the main thread: nothing can be set up
        receiver.close()
        sender.close()
        return
    if earlier != -1:  # someone listens already (installed once, however often it is called)
        signal.set_wakeup_fd(earlier)
        receiver.close()
        sender.close()
        return
    threading.Thread(
        target=_forward, args=(receiver, sender), name="forward-interrupts", daemon=True
    ).start()


def _forward(receiver: socket.socket, sender: socket.socket) -> None:
    """Send SIGINT to every descendant whenever one arrives (`sender` stays open with it)."""
    while signals := receiver.recv(64):
        if signal.SIGINT in signals:
            for child in psutil.Process().children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    child.send_signal(signal.SIGINT)
