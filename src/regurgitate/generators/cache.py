"""The persistent answer cache of API generators.

SQLite in WAL mode with synchronous=FULL: answers are committed (and fsynced) as they arrive,
so a process killed at any point leaves every committed answer intact and never a half-written
one; a re-run reads them instead of paying again. A writer thread does the committing, so that
the event loop never waits on the disk: it takes every answer that arrived while it was busy into
one transaction (a kill loses the requests in flight and the answers of the commit under way).
One file serves all generators (keys are hashes of everything that determines an answer), and
the WAL lets parallel Snakemake jobs write to it at once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    generator TEXT NOT NULL,
    model TEXT NOT NULL,
    source TEXT NOT NULL,
    text TEXT NOT NULL,
    finish_reason TEXT NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    logprob REAL,
    cost REAL NOT NULL,
    via TEXT NOT NULL,
    created REAL NOT NULL
)
"""


@dataclass
class Reply:
    """One answer as the provider gave it (the text is cleaned later, so that better cleaning
    never needs a new request)."""

    text: str
    finish_reason: str  # stop, length, refusal or the provider's own word
    input_tokens: int
    output_tokens: int
    logprob: float | None = None


@dataclass
class Answer:
    reply: Reply
    cost: float
    via: str  # "request" or "batch"


INSERT = "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"


BUSY_SECONDS = 60


def connect(path: Path, check_same_thread: bool = True) -> sqlite3.Connection:
    db = sqlite3.connect(
        path, timeout=BUSY_SECONDS, isolation_level=None, check_same_thread=check_same_thread
    )
    enable_wal(db)
    db.execute("PRAGMA synchronous=FULL")
    db.execute(SCHEMA)
    return db


def enable_wal(db: sqlite3.Connection) -> None:
    """Switches a new cache file to WAL. The switch takes an exclusive lock and SQLite does not
    wait for it (the busy timeout does not apply), so parallel jobs that open the same new cache
    at once would fail with "database is locked": they retry instead."""
    deadline = time.monotonic() + BUSY_SECONDS
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def record(key: str, generator: str, model: str, source: str, answer: Answer) -> tuple:
    """One row of the answers table."""
    reply = answer.reply
    return (
        key,
        generator,
        model,
        source,
        reply.text,
        reply.finish_reason,
        reply.input_tokens,
        reply.output_tokens,
        reply.logprob,
        answer.cost,
        answer.via,
        time.time(),
    )


def commit(db: sqlite3.Connection, rows: list[tuple]) -> None:
    """All of `rows` in one transaction: on disk together, or not at all."""
    db.execute("BEGIN IMMEDIATE")
    try:
        db.executemany(INSERT, rows)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


class Cache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = connect(self.path)

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    def get(self, keys: list[str]) -> dict[str, Answer]:
        found: dict[str, Answer] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                "SELECT key, text, finish_reason, input_tokens, output_tokens, logprob, cost, via"
                f" FROM answers WHERE key IN ({marks})",
                chunk,
            )
            for key, text, finish, tokens_in, tokens_out, logprob, cost, via in rows:
                found[key] = Answer(Reply(text, finish, tokens_in, tokens_out, logprob), cost, via)
        return found

    def put_many(self, rows: list[tuple]) -> None:
        """Rows made by `record`, committed in one transaction."""
        commit(self.db, rows)


class Writer:
    """Commits answers on a thread of its own, everything that waits in one transaction.

    `put` only queues: the request's worker goes on at once, unless more than `backlog` answers
    wait for the disk (a disk slower than the answers), so that a kill loses at most the requests
    in flight and the answers of the commit under way (a few milliseconds' worth)."""

    def __init__(self, path: str | Path, backlog: int = 16):
        # Opened here, so that a cache that cannot be opened fails the run at once; used only
        # by the thread from then on.
        self.db = connect(Path(path), check_same_thread=False)
        self.backlog = backlog
        self.waiting: collections.deque[asyncio.Future] = collections.deque()
        self.error: Exception | None = None
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.commits = 0
        # A daemon, so that a process stopping on an error never hangs on it; close() drains it.
        self.thread = threading.Thread(target=self.loop, name="cache-writer", daemon=True)
        self.thread.start()

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, kind, *exc: object) -> None:
        self.close(check=kind is None)

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    async def put(self, row: tuple) -> None:
        """Queues `row` (made by `record`) for the next commit."""
        self.check()
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self.queue.put((row, done, loop))
        self.waiting.append(done)
        while self.waiting and (self.waiting[0].done() or len(self.waiting) > self.backlog):
            await self.waiting.popleft()
        self.check()

    def loop(self) -> None:
        db = self.db
        try:
            while (item := self.queue.get()) is not None:
                items = [item]
                while not self.queue.empty() and (item := self.queue.get()) is not None:
                    items.append(item)
                try:
                    commit(db, [row for row, _, _ in items])
                    self.commits += 1
                except Exception as err:  # noqa: BLE001 - raised by the next put() and close()
                    self.error = self.error or err
                for _, done, loop in items:
                    # a loop that has ended has no one left to tell
                    with contextlib.suppress(RuntimeError):
                        loop.call_soon_threadsafe(settle, done)
                if item is None:
                    return
        finally:
            db.close()

    def close(self, check: bool = True) -> None:
        """Commits what waits and stops the thread."""
        self.queue.put(None)
        self.thread.join()
        if check:
            self.check()


def settle(done: asyncio.Future) -> None:
    if not done.done():  # a put() cancelled while it waited: the row is committed all the same
        done.set_result(None)
