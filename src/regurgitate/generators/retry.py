"""Manners towards an API: client-side rate limits and retries with backoff, and keeping the
key out of every message."""

from __future__ import annotations

import asyncio
import email.utils
import errno
import functools
import json
import logging
import random
import re
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_STATUS = {408, 409, 429}  # and every 5xx, Anthropic's 529 (overloaded) included
FATAL_STATUS = {401, 403, 404}  # a wrong key, model or URL: every further request fails too
MAX_DELAY = 120.0


class ApiError(RuntimeError):
    """A request that failed for good; the message never holds the key. `fatal`: every further
    request would fail too; `signature`: what the same failure of another row has in common
    with this one."""

    def __init__(self, message: str, fatal: bool = False, signature: str = ""):
        super().__init__(message)
        self.fatal = fatal
        self.signature = signature or message


class Stopped(ApiError):
    """A row given up while it waited to retry, because the run is stopping."""


class MalformedReply(ValueError):
    """A well-formed JSON body that is not the reply the protocol promises."""


def malformed_on_error(parse: Callable[[dict], T]) -> Callable[[dict], T]:
    @functools.wraps(parse)
    def checked(data: dict) -> T:
        try:
            return parse(data)
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as err:
            raise MalformedReply(f"unexpected reply body ({type(err).__name__}: {err})") from err

    return checked


class Bucket:
    """A per-minute allowance (requests or tokens) that refills continuously and holds at most
    ten seconds' worth, so a run starts without a burst."""

    def __init__(self, per_minute: int):
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, per_minute / 6.0)
        self.level = self.capacity
        self.stamp = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    async def take(self, amount: float) -> None:
        amount = min(amount, self.capacity)
        while True:
            self._refill()
            if self.level >= amount:
                self.level -= amount
                return
            await asyncio.sleep((amount - self.level) / self.rate)

    def give_back(self, amount: float) -> None:
        self._refill()
        self.level = min(self.capacity, self.level + amount)


class Redactor(logging.Filter):
    """Replaces the key wherever it would reach a log record, tracebacks included."""

    def __init__(self, secret: str):
        super().__init__()
        self.secret = secret

    def __call__(self, text: str) -> str:
        return text.replace(self.secret, "[redacted]") if self.secret else text

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self(record.getMessage())
        record.args = ()
        if record.exc_info:
            record.exc_text = self(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True

    def __enter__(self) -> Redactor:
        for handler in logging.getLogger().handlers:
            handler.addFilter(self)
        return self

    def __exit__(self, *exc: object) -> None:
        for handler in logging.getLogger().handlers:
            handler.removeFilter(self)


def retry_after(err: BaseException) -> float | None:
    """Seconds the server asked us to wait (Retry-After, retry-after-ms), if it did."""
    response = getattr(err, "response", None)
    headers = getattr(response, "headers", None) or {}
    if headers.get("retry-after-ms"):
        try:
            return float(headers["retry-after-ms"]) / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time()) if when else None


def failure_kind(err: BaseException, transient: tuple[type, ...]) -> str | None:
    """A short name for a retryable failure (`429`, `529`, `timeout`, ...); None if final."""
    status = getattr(err, "status_code", None)
    if isinstance(status, int):
        return str(status) if status in RETRY_STATUS or status >= 500 else None
    if isinstance(err, json.JSONDecodeError | MalformedReply):
        return "malformed"
    if isinstance(err, transient):
        name = type(err).__name__.lower()
        if "timeout" in name:
            return "timeout"
        return "malformed" if "validation" in name else "connection"
    return None


def unreachable(err: BaseException) -> str | None:
    """Why no connection could be made (refused, no such host, no route), if that is the error:
    the underlying OS error, wherever the client library wrapped it."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, ConnectionRefusedError):
            return "connection refused"
        if isinstance(err, socket.gaierror):
            return f"the host name does not resolve ({err.strerror or err})"
        if isinstance(err, OSError) and err.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return f"no route to the host ({err.strerror})"
        err = err.__cause__ or err.__context__
    return None


def signature(err: BaseException) -> str:
    """The failure without what differs from row to row (ids, numbers)."""
    status = getattr(err, "status_code", None)
    text = re.sub(r"\b[\w-]*\d[\w-]*\b", "#", str(err))
    return f"{type(err).__name__} {status or ''}: {text}"


class Retrier:
    """Runs a call until it succeeds: exponential backoff with full jitter, never shorter than
    what Retry-After asks; counts every retry by kind. Until a first call has succeeded, a server
    that cannot be reached (connection refused, a host name that does not resolve) fails at once,
    naming `where`: retrying cannot help a wrong address. `stop()` ends every wait for a retry."""

    def __init__(
        self,
        transient: tuple[type, ...],
        redact: Callable[[str], str],
        max_retries: int = 8,
        backoff_seconds: float = 1.0,
        where: str = "the server",
    ):
        self.transient = transient
        self.redact = redact
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self.where = where
        self.retries: Counter[str] = Counter()
        self.requests = 0
        self.reached = False  # a call has succeeded: the address is right
        self.stopping: asyncio.Event | None = None

    def stop(self) -> None:
        if self.stopping is None:
            self.stopping = asyncio.Event()
        self.stopping.set()

    def delay(self, attempt: int, asked: float | None) -> float:
        ceiling = min(MAX_DELAY, self.backoff_seconds * 2.0**attempt)
        jittered = random.uniform(ceiling / 2.0, ceiling)
        return max(jittered, asked or 0.0)

    async def __call__(self, call: Callable[[], Awaitable[T]], what: str) -> T:
        for attempt in range(self.max_retries + 1):
            self.requests += 1
            try:
                result = await call()
            except Exception as err:  # noqa: BLE001 - classified below, re-raised when final
                self.check_reachable(err, what)
                kind = failure_kind(err, self.transient)
                message = self.redact(f"{what}: {type(err).__name__}: {err}")
                if kind is None or attempt == self.max_retries:
                    status = getattr(err, "status_code", None)
                    tries = f" after {attempt + 1} attempts" if kind else ""
                    fatal = status in FATAL_STATUS
                    raise ApiError(message + tries, fatal, self.redact(signature(err))) from None
                self.retries[kind] += 1
                wait = self.delay(attempt, retry_after(err))
                log.warning("%s; retry %d in %.2f s", message, attempt + 1, wait)
                await self.sleep(wait, message)
            else:
                self.reached = True
                return result
        raise AssertionError("unreachable")

    def check_reachable(self, err: BaseException, what: str) -> None:
        reason = None if self.reached else unreachable(err)
        if reason:
            raise ApiError(
                self.redact(f"{what}: cannot reach {self.where}: {reason}"),
                fatal=True,
                signature=f"unreachable: {reason}",
            ) from None

    async def sleep(self, seconds: float, message: str) -> None:
        if self.stopping is None:
            self.stopping = asyncio.Event()
        if self.stopping.is_set():
            raise Stopped(f"{message}; not retried, the run is stopping")
        try:
            await asyncio.wait_for(self.stopping.wait(), seconds)
        except TimeoutError:
            return
        raise Stopped(f"{message}; not retried, the run is stopping")
