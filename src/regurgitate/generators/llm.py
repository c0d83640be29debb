"""API generators: the engine that every provider backend shares.

Each distinct source is answered once: from the cache, else by one request that bounded
concurrency, client-side rate limits and retries carry through; each answer is committed to the
cache as it arrives, so a killed run resumes where it stopped and a re-run sends nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from regurgitate.generators.base import Generation
from regurgitate.generators.cache import Answer, Cache
from regurgitate.generators.prompts import clean_output, output_flags
from regurgitate.generators.retry import ApiError, Bucket, Redactor, Retrier
from regurgitate.generators.settings import ApiSettings

log = logging.getLogger(__name__)
# The HTTP library logs every request at INFO: too much for a job's log.
for _noisy in ("httpx", "httpx2", "openai", "anthropic"):
    logging.getLogger(_noisy).setLevel(logging.WARNING)
CACHE_FILE = "cache.sqlite"


class BudgetExceeded(RuntimeError):
    """The budget cap stopped a generation; what was paid for is in the cache."""


@dataclass
class Account:
    """Tokens, money and requests of one generation; `cost.json` and the log show it."""

    rows: int = 0
    cached_rows: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    spent_now: float = 0.0  # of `cost`, what this run paid
    requests: int = 0
    retries: dict = field(default_factory=dict)
    batch_rows: int = 0
    failed_rows: int = 0
    seconds: float = 0.0

    def add(self, answer: Answer, new: bool) -> None:
        self.input_tokens += answer.reply.input_tokens
        self.output_tokens += answer.reply.output_tokens
        self.cost += answer.cost
        if new:
            self.spent_now += answer.cost


def make_backend(settings: ApiSettings, key: str):
    if settings.backend == "openai":
        from regurgitate.generators.openai_backend import OpenAIBackend

        return OpenAIBackend(settings, key)
    from regurgitate.generators.anthropic_backend import AnthropicBackend

    return AnthropicBackend(settings, key)


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
                return asyncio.run(self._translate(sources, redact))
            except (ApiError, BudgetExceeded):
                raise
            except Exception as err:  # a client error we did not classify: keep the key out
                raise RuntimeError(redact(f"{self.name}: {type(err).__name__}: {err}")) from None

    async def _translate(self, sources: list[str], redact: Redactor) -> list[Generation]:
        started = time.monotonic()
        settings = self.settings
        keys = [settings.cache_key(s) for s in sources]
        todo = dict(zip(keys, sources, strict=True))
        backend = make_backend(settings, self.key)
        retrier = Retrier(backend.transient, redact, settings.max_retries, settings.backoff_seconds)
        with Cache(self.cache_path) as cache:
            known = cache.get(list(todo))
            account = self.account
            account.rows = len(sources)
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
                    from regurgitate.generators.batch import run_batches

                    await run_batches(backend, settings, pending, cache, retrier, account)
                    answered = cache.get(list(pending))
                    pending = {k: s for k, s in pending.items() if k not in answered}
                if pending:
                    runner = Runner(settings, backend, retrier, cache, account, self.progress)
                    await runner.run(pending)
            finally:
                await backend.close()
                account.requests += retrier.requests
                account.retries = dict(retrier.retries)
                account.seconds = time.monotonic() - started
                log.info("%s: %s", self.name, summary(account))
            answers = cache.get(list(todo))
        return [self.generation(s, answers[k]) for k, s in zip(keys, sources, strict=True)]

    def generation(self, source: str, answer: Answer) -> Generation:
        reply = answer.reply
        target = clean_output(reply.text)
        finish = reply.finish_reason if reply.finish_reason in ("stop", "length") else "stop"
        return Generation(
            target=target,
            logprob=reply.logprob,
            tokens=reply.output_tokens,
            cost=answer.cost,
            finish_reason=finish,
            input_tokens=reply.input_tokens,
            flags=output_flags(reply.text, target, reply.finish_reason, self.settings.prompt),
        )


def summary(account: Account) -> str:
    retries = ", ".join(f"{k}×{n}" for k, n in sorted(account.retries.items())) or "none"
    rate = account.requests / account.seconds if account.seconds else 0.0
    return (
        f"{account.rows} rows, {account.cached_rows} from the cache, {account.requests} requests "
        f"({rate:.1f}/s), retries: {retries}; {account.input_tokens:,} input + "
        f"{account.output_tokens:,} output tokens, cost {account.cost:.4f} "
        f"({account.spent_now:.4f} this run)"
    )


class Runner:
    """Workers that take sources one at a time, within the concurrency, rate and budget."""

    LOG_EVERY = 30.0  # seconds between progress lines in the log

    def __init__(self, settings: ApiSettings, backend, retrier, cache, account, progress):
        self.settings = settings
        self.backend = backend
        self.retrier = retrier
        self.cache = cache
        self.account = account
        self.show = progress
        rpm, tpm = settings.requests_per_minute, settings.tokens_per_minute
        self.requests = Bucket(rpm) if rpm else None
        self.tokens = Bucket(tpm) if tpm else None
        self.reserved = 0.0
        self.stop: str | None = None
        self.failures: list[str] = []
        self.fatal = False
        self.logged = time.monotonic()

    def reservation(self, source: str) -> tuple[int, float]:
        """Tokens and money one request may take at most (about), held until it answers."""
        prompt = self.settings.estimate_input_tokens(source)
        limit = self.settings.sampling.max_tokens
        return prompt + limit, self.settings.cost(prompt, limit)

    async def run(self, pending: dict[str, str]) -> None:
        queue = list(pending.items())
        queue.reverse()
        total = len(queue)
        with tqdm(total=total, desc=self.settings.name, unit="row", disable=not self.show) as bar:
            self.bar = bar
            workers = [self.worker(queue) for _ in range(min(self.settings.concurrency, total))]
            await asyncio.gather(*workers)
        if self.stop:
            raise BudgetExceeded(self.stop)
        if self.failures:
            self.account.failed_rows = len(self.failures)
            raise ApiError(
                f"{self.settings.name}: {len(self.failures)} rows failed for good (the others "
                f"are cached; a re-run asks only for these); first: {self.failures[0]}"
            )

    def over_budget(self, money: float) -> bool:
        budget = self.settings.budget
        if budget is None or self.account.cost + self.reserved + money <= budget:
            return False
        self.stop = (
            f"{self.settings.name}: budget {budget} reached after {self.account.cost:.4f} "
            f"(the next request could cost up to {money:.4f}); the rows paid for are cached, "
            f"raise generators.{self.settings.name}.budget to go on"
        )
        return True

    async def worker(self, queue: list[tuple[str, str]]) -> None:
        while queue and not self.stop:
            if self.fatal:
                return
            key, source = queue.pop()
            tokens, money = self.reservation(source)
            if self.over_budget(money):
                return
            self.reserved += money
            try:
                await self.one(key, source, tokens)
            except ApiError as err:
                self.failures.append(str(err))
                self.fatal = self.fatal or err.fatal
            finally:
                self.reserved -= money

    async def one(self, key: str, source: str, tokens: int) -> None:
        async def call():
            if self.requests:
                await self.requests.take(1)
            if self.tokens:
                await self.tokens.take(tokens)
            return await self.backend.complete(source)

        reply = await self.retrier(call, f"{self.settings.name} row {key[:12]}")
        if self.tokens:
            self.tokens.give_back(tokens - reply.input_tokens - reply.output_tokens)
        cost = self.settings.cost(reply.input_tokens, reply.output_tokens)
        answer = Answer(reply, cost, "request")
        self.cache.put(key, self.settings.name, self.settings.model, source, answer)
        self.account.add(answer, new=True)
        self.tick()

    def tick(self) -> None:
        account = self.account
        self.bar.update(1)
        self.bar.set_postfix(
            tokens=account.input_tokens + account.output_tokens, cost=f"{account.cost:.4f}"
        )
        if time.monotonic() - self.logged > self.LOG_EVERY:
            self.logged = time.monotonic()
            log.info(
                "%s: %d/%d rows requested, %.1f rows/s, %d tokens, cost %.4f",
                self.settings.name, self.bar.n, self.bar.total,
                self.bar.format_dict["rate"] or 0.0,
                account.input_tokens + account.output_tokens, account.cost,
            )  # fmt: skip
