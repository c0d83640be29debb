"""API generators: the engine that every provider backend shares.

Each distinct source is answered once: from the cache, else by one request that bounded
concurrency, client-side rate limits and retries carry through; each answer is committed to the
cache as it arrives (by a writer thread, off the event loop), so a killed run resumes where it
stopped and a re-run sends nothing. A run stops early, with a message that counts every row,
where going on cannot help: a server it cannot reach, a wrong key, model or URL, the same failure
for several rows in a row, or a budget that does not cover one more request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from regurgitate.engine.progress import Progress
from regurgitate.generators.base import Generation
from regurgitate.generators.batch import run_batches
from regurgitate.generators.cache import Answer, Cache, Writer, record
from regurgitate.generators.cleaning import clean_output, output_flags
from regurgitate.generators.retry import ApiError, Bucket, Redactor, Retrier, Stopped
from regurgitate.generators.settings import ApiSettings

log = logging.getLogger(__name__)
# The HTTP library logs every request at INFO: too much for a job's log.
for _noisy in ("httpx", "httpx2", "openai", "anthropic"):
    logging.getLogger(_noisy).setLevel(logging.WARNING)
CACHE_FILE = "cache.sqlite"
# Rows that fail for good with the same error, one after another, before a run stops: an error
# that every row meets (a parameter the server rejects, a server that went away) ends the run
# after these rows instead of after every row's retries.
SAME_FAILURES_TO_STOP = 5


class BudgetExceeded(RuntimeError):
    """The budget cap stopped a generation; what was paid for is in the cache."""


@dataclass
class Account:
    """Tokens, money and requests of one generation; `cost.json` and the log show it. Row counts
    are of distinct sources (`rows` counts every row)."""

    rows: int = 0
    distinct: int = 0
    cached_rows: int = 0
    answered: int = 0  # distinct sources answered in this run, by single requests or a batch
    batch_rows: int = 0  # of `answered`, those a batch answered
    failed_rows: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    spent_now: float = 0.0  # of `cost`, what this run paid
    batch_spent: float = 0.0  # of `spent_now`, what batches cost
    requests: int = 0
    retries: dict = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, answer: Answer, new: bool) -> None:
        self.input_tokens += answer.reply.input_tokens
        self.output_tokens += answer.reply.output_tokens
        self.cost += answer.cost
        if new:
            self.spent_now += answer.cost
            self.answered += 1
            if answer.via == "batch":
                self.batch_rows += 1
                self.batch_spent += answer.cost

    @property
    def never_requested(self) -> int:
        return self.distinct - self.cached_rows - self.answered - self.failed_rows

    def tally(self) -> str:
        """Where every distinct source stands: the end of each stop message."""
        batch = f" ({self.batch_rows} by batch)" if self.batch_rows else ""
        return (
            f"of {self.distinct} distinct sources {self.answered} were answered in this run"
            f"{batch}, {self.cached_rows} came from the cache, {self.failed_rows} failed and "
            f"{self.never_requested} were never requested; this run spent {self.spent_now:.4f} "
            f"(cost of all answered rows {self.cost:.4f}); what was answered is cached, a re-run "
            f"asks only for the other {self.distinct - self.cached_rows - self.answered}"
        )


def make_backend(settings: ApiSettings, key: str):
    # Each client library is imported only by a study that uses its backend.
    if settings.backend == "openai":
        from regurgitate.generators.openai_backend import OpenAIBackend

        return OpenAIBackend(settings, key)
    from regurgitate.generators.anthropic_backend import AnthropicBackend

    return AnthropicBackend(settings, key)


def make_retrier(settings: ApiSettings, backend, redact: Redactor) -> Retrier:
    where = f"{backend.client.base_url} (generators.{settings.name}.base_url)"
    return Retrier(backend.transient, redact, settings.max_retries, settings.backoff_seconds, where)


class ApiGenerator:
    """A `Generator` over an `openai` or `anthropic` backend."""

    def __init__(self, settings: ApiSettings, progress: bool = True):
        self.name = settings.name
        self.settings = settings
        self.key = settings.api_key()  # before anything else, so a missing key costs nothing
        self.progress = progress
        self.account = Account()

    @property
    def cache_path(self) -> Path:
        return Path(self.settings.cache_dir) / CACHE_FILE

    def translate(self, sources: list[str]) -> list[Generation]:
        redact = Redactor(self.key)
        with redact:
            try:
                answers = asyncio.run(self._translate(sources, redact))
            except (ApiError, BudgetExceeded) as err:
                raise type(err)(f"{err}; {self.account.tally()}") from None
            except Exception as err:  # a client error we did not classify: keep the key out
                raise RuntimeError(redact(f"{self.name}: {type(err).__name__}: {err}")) from None
        rows = [self.generation(s, answer) for s, answer in zip(sources, answers, strict=True)]
        flags = Counter(flag for row in rows for flag in row.flags)
        if flags:
            log.warning(
                "%s: flagged rows (kept, see the flags column): %s%s", self.name,
                ", ".join(f"{flag} {n}" for flag, n in sorted(flags.items())),
                "; `wrapped`: cleaning left what looks like part of a preamble, quote or note"
                if flags["wrapped"] else "",
            )  # fmt: skip
        return rows

    async def _translate(self, sources: list[str], redact: Redactor) -> list[Answer]:
        started = time.monotonic()
        settings = self.settings
        keys = [settings.cache_key(s) for s in sources]
        todo = dict(zip(keys, sources, strict=True))
        backend = make_backend(settings, self.key)
        retrier = make_retrier(settings, backend, redact)
        with Cache(self.cache_path) as cache:
            known = cache.get(list(todo))
            account = self.account
            account.rows, account.distinct = len(sources), len(todo)
            account.cached_rows = len(known)
            for answer in known.values():
                account.add(answer, new=False)
            pending = {k: s for k, s in todo.items() if k not in known}
            log.info(
                "%s: %d rows (%d distinct), %d cached, %d to request from %s %s",
                self.name, len(sources), len(todo), len(known), len(pending),
                settings.backend, settings.model,
            )  # fmt: skip
            try:
                if pending and settings.batch:
                    pending = await self.batches(backend, pending, cache, retrier)
                if pending:
                    with Writer(self.cache_path, settings.concurrency) as writer:
                        runner = Runner(settings, backend, retrier, writer, account, self.progress)
                        await runner.run(pending)
            finally:
                await backend.close()
                account.requests += retrier.requests
                account.retries = dict(retrier.retries)
                account.seconds = time.monotonic() - started
                log.info("%s: %s", self.name, summary(account))
            answers = cache.get(list(todo))
        return [answers[k] for k in keys]

    async def batches(self, backend, pending: dict[str, str], cache, retrier) -> dict[str, str]:
        """Sends what the budget covers through the batch interface; the rows a batch did not
        answer are left for single requests."""
        left_out = await run_batches(backend, self.settings, pending, cache, retrier, self.account)
        answered = cache.get(list(pending))
        if left_out:
            raise BudgetExceeded(
                f"{self.name}: budget {self.settings.budget}: the batch was given only the rows "
                f"it covers at their worst-case price ({len(left_out)} left out) and spent "
                f"{self.account.batch_spent:.4f}; raise generators.{self.name}.budget to go on"
            )
        return {k: s for k, s in pending.items() if k not in answered}

    def generation(self, source: str, answer: Answer) -> Generation:
        reply = answer.reply
        prompt = self.settings.prompt
        target = clean_output(reply.text, source, prompt)
        finish = reply.finish_reason if reply.finish_reason in ("stop", "length") else "stop"
        return Generation(
            target=target,
            logprob=reply.logprob,
            tokens=reply.output_tokens,
            cost=answer.cost,
            finish_reason=finish,
            input_tokens=reply.input_tokens,
            flags=output_flags(reply.text, target, reply.finish_reason, prompt, source),
        )


def summary(account: Account) -> str:
    retries = ", ".join(f"{k}×{n}" for k, n in sorted(account.retries.items())) or "none"
    rate = account.requests / account.seconds if account.seconds else 0.0
    batch = f", {account.batch_spent:.4f} by batch" if account.batch_rows else ""
    return (
        f"{account.rows} rows, {account.cached_rows} from the cache, {account.answered} "
        f"answered now, {account.failed_rows} failed; {account.requests} requests "
        f"({rate:.1f}/s), retries: {retries}; {account.input_tokens:,} input + "
        f"{account.output_tokens:,} output tokens, cost {account.cost:.4f} "
        f"({account.spent_now:.4f} this run{batch})"
    )


class Runner:
    """Workers that take sources one at a time, within the concurrency, rate and budget."""

    LOG_EVERY = 30.0  # seconds between progress lines in the log

    def __init__(self, settings: ApiSettings, backend, retrier, writer, account, progress):
        self.settings = settings
        self.backend = backend
        self.retrier = retrier
        self.writer = writer
        self.account = account
        self.show = progress
        rpm, tpm = settings.requests_per_minute, settings.tokens_per_minute
        self.requests = Bucket(rpm) if rpm else None
        self.tokens = Bucket(tpm) if tpm else None
        self.reserved = 0.0  # the worst-case price of the requests in flight
        self.released = asyncio.Condition()
        self.halt: str | None = None  # why the run stops early
        self.over_budget = False
        self.failures: list[str] = []
        self.streak: tuple[str, int] = ("", 0)  # the last failure's signature, and its run
        self.in_flight: set[asyncio.Future] = set()
        self.logged = time.monotonic()
        # Counted here, not by the bar: a bar that is not shown counts nothing.
        self.answered = 0
        self.pace = Progress(0)

    def reservation(self, source: str) -> tuple[int, float]:
        """Tokens and money one request may take at most (about), held until it answers."""
        prompt = self.settings.estimate_input_tokens(source)
        limit = self.settings.sampling.max_tokens
        return prompt + limit, self.settings.cost(prompt, limit)

    async def run(self, pending: dict[str, str]) -> None:
        queue = list(pending.items())
        queue.reverse()
        total = len(queue)
        self.pace = Progress(total)
        with tqdm(total=total, desc=self.settings.name, unit="row", disable=not self.show) as bar:
            self.bar = bar
            workers = [self.worker(queue) for _ in range(min(self.settings.concurrency, total))]
            await asyncio.gather(*workers)
        self.account.failed_rows = len(self.failures)
        if self.over_budget:
            raise BudgetExceeded(self.halt)
        if self.halt:
            raise ApiError(self.halt)
        if self.failures:
            raise ApiError(
                f"{self.settings.name}: {len(self.failures)} rows failed for good; "
                f"first: {self.failures[0]}"
            )

    def stop(self, reason: str, retries: bool = True, in_flight: bool = False) -> None:
        """No row starts any more. With `retries`, rows waiting to retry give up (the failure
        they met is every row's); with `in_flight`, requests in flight are cancelled too (every
        further request fails anyway, and one that hangs must not hold the stop). Otherwise what
        is under way finishes: it may be answered, and paid."""
        if self.halt is None:
            self.halt = reason
        if retries:
            self.retrier.stop()
        if in_flight:
            for request in self.in_flight:
                request.cancel()

    async def afford(self, money: float) -> bool:
        """Waits while the requests in flight may still leave room for one that could cost
        `money`; false (and the run stops) once even with none in flight there is none."""
        budget = self.settings.budget
        if budget is None:
            return True
        account = self.account
        async with self.released:
            await self.released.wait_for(
                lambda: (
                    self.halt
                    or account.cost + self.reserved + money <= budget
                    or self.reserved == 0
                )
            )
            if self.halt:
                return False
            if account.cost + self.reserved + money <= budget:
                self.reserved += money
                return True
            self.over_budget = True
            self.stop(
                f"{self.settings.name}: budget {budget} reached: the answers cost "
                f"{account.cost:.4f} and the next request could cost up to {money:.4f}; "
                f"raise generators.{self.settings.name}.budget to go on",
                retries=False,  # the rows under way hold their reservations
            )
            self.released.notify_all()
            return False

    async def release(self, money: float) -> None:
        if self.settings.budget is None:
            return
        async with self.released:
            self.reserved -= money
            self.released.notify_all()

    async def worker(self, queue: list[tuple[str, str]]) -> None:
        while queue and not self.halt:
            key, source = queue.pop()
            tokens, money = self.reservation(source)
            if not await self.afford(money):
                return
            try:
                await self.one(key, source, tokens)
            except ApiError as err:
                self.failed(err)
            finally:
                await self.release(money)

    def failed(self, err: ApiError) -> None:
        self.failures.append(str(err))
        if isinstance(err, Stopped):
            return
        if err.fatal:
            message = f"{self.settings.name}: stopped, every further request would fail: {err}"
            self.stop(message, in_flight=True)
            return
        last, run = self.streak
        self.streak = (err.signature, run + 1 if err.signature == last else 1)
        if self.streak[1] >= SAME_FAILURES_TO_STOP:
            self.stop(
                f"{self.settings.name}: stopped after the same failure for "
                f"{SAME_FAILURES_TO_STOP} rows in a row: {err}"
            )

    async def one(self, key: str, source: str, tokens: int) -> None:
        async def call():
            if self.requests:
                await self.requests.take(1)
            if self.tokens:
                await self.tokens.take(tokens)
            return await self.backend.complete(source)

        what = f"{self.settings.name} row {key[:12]}"
        request = asyncio.ensure_future(self.retrier(call, what))
        self.in_flight.add(request)
        try:
            reply = await request
        except asyncio.CancelledError:
            if asyncio.current_task().cancelling():  # the run itself is cancelled
                raise
            raise Stopped(f"{what}: given up in flight, the run is stopping") from None
        finally:
            self.in_flight.discard(request)
        if self.tokens:
            self.tokens.give_back(tokens - reply.input_tokens - reply.output_tokens)
        cost = self.settings.cost(reply.input_tokens, reply.output_tokens)
        answer = Answer(reply, cost, "request")
        self.account.add(answer, new=True)  # paid for: the budget counts it from now on
        await self.writer.put(record(key, self.settings.name, self.settings.model, source, answer))
        self.streak = ("", 0)
        self.tick()

    def tick(self) -> None:
        account = self.account
        self.answered += 1
        self.bar.update(1)
        self.bar.set_postfix(
            tokens=account.input_tokens + account.output_tokens, cost=f"{account.cost:.4f}"
        )
        if time.monotonic() - self.logged > self.LOG_EVERY:
            self.logged = time.monotonic()
            log.info(
                "%s: rows requested %s, %.1f rows/s, %d tokens, cost %.4f",
                self.settings.name, self.pace.describe(self.answered),
                self.answered / max(time.monotonic() - self.pace.start, 1e-9),
                account.input_tokens + account.output_tokens, account.cost,
            )  # fmt: skip
