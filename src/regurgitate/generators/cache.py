"""The persistent answer cache of API generators.

SQLite in WAL mode with synchronous=FULL: each answer is committed (and fsynced) the moment it
arrives, as one transaction, so a process killed at any point leaves every answer it received
before the kill intact and never a half-written one; a re-run reads them instead of paying again.
One file serves all generators (keys are hashes of everything that determines an answer), and
the WAL lets parallel Snakemake jobs write to it at once.
"""

from __future__ import annotations

import sqlite3
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


class Cache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute(SCHEMA)

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

    def put(self, key: str, generator: str, model: str, source: str, answer: Answer) -> None:
        reply = answer.reply
        self.db.execute(
            "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
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
            ),
        )
