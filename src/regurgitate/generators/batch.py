"""The providers' batch interfaces (OpenAI Batch API, Anthropic Message Batches): cheaper, slower.

A batch's ids and rows are written to a state file beside the cache before anything waits on
them, so a restarted run polls the batch it already paid for instead of sending another (even
where the budget or the rows to request have changed since). A batch is given only the rows the
budget still covers, each priced at its worst case (the prompt's estimate and `max_tokens` at the
batch price). Answers go into the same cache as single requests; rows a batch did not answer are
then requested one by one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from pathlib import Path

from regurgitate.generators.cache import Answer, Cache, record
from regurgitate.io import write_json

log = logging.getLogger(__name__)
CHUNK = {"openai": 50_000, "anthropic": 100_000}  # the providers' limits on requests a batch


def state_path(settings, keys: list[str]) -> Path:
    digest = hashlib.sha256("".join(sorted(keys)).encode()).hexdigest()[:20]
    return Path(settings.cache_dir) / "batches" / f"{settings.name}-{digest}.json"


def read_state(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def worst_case(settings, source: str) -> float:
    """The most one row can cost through a batch (about: the prompt's estimate is generous)."""
    prompt = settings.estimate_input_tokens(source)
    return settings.cost(prompt, settings.sampling.max_tokens, batch=True)


def affordable(settings, pending: dict[str, str], spent: float) -> dict[str, str]:
    """The rows, in order, that the budget covers at their worst-case price."""
    if settings.budget is None:
        return dict(pending)
    left = settings.budget - spent
    chosen = {}
    for key, source in pending.items():
        price = worst_case(settings, source)
        if price > left:
            break
        chosen[key] = source
        left -= price
    return chosen


def in_flight(settings, pending: dict[str, str]) -> list[tuple[Path, dict[str, str]]]:
    """Batches an earlier run of this generator sent for rows that are still pending."""
    found = []
    for path in sorted((Path(settings.cache_dir) / "batches").glob(f"{settings.name}-*.json")):
        keys = read_state(path).get("keys")
        if keys is None:  # written before states named their rows: its name does
            mine = pending if path == state_path(settings, list(pending)) else {}
        else:
            mine = {k: pending[k] for k in keys if k in pending}
        if mine:
            found.append((path, mine))
    return found


async def run_batches(
    backend, settings, pending: dict[str, str], cache: Cache, retrier, account
) -> dict[str, str]:
    """Answers what batches can within the budget; returns the rows left out for the budget."""
    pending = dict(pending)
    for path, rows in in_flight(settings, pending):
        log.info("%s: polling the batch of %s (%d rows)", settings.name, path.name, len(rows))
        await collect(backend, settings, rows, path, cache, retrier, account)
        pending = {k: s for k, s in pending.items() if k not in rows}
    chosen = affordable(settings, pending, account.cost)
    if len(chosen) < len(pending):
        log.warning(
            "%s: budget %s covers %d of the %d rows left at their worst-case batch price "
            "(%.4f spent so far)",
            settings.name, settings.budget, len(chosen), len(pending), account.cost,
        )  # fmt: skip
    items = list(chosen.items())
    size = CHUNK[settings.backend]
    for start in range(0, len(items), size):
        rows = dict(items[start : start + size])
        await collect(
            backend, settings, rows, state_path(settings, list(rows)), cache, retrier, account
        )
    return {k: s for k, s in pending.items() if k not in chosen}


async def collect(backend, settings, rows: dict[str, str], path: Path, cache, retrier, account):
    """Sends (or resumes) one batch, caches its answers, then forgets its state."""
    run = OpenAIBatch if settings.backend == "openai" else AnthropicBatch
    results = await run(backend, settings, retrier, path).results(rows)
    answers = []
    for key, reply in results:
        if key not in rows:
            continue
        cost = settings.cost(reply.input_tokens, reply.output_tokens, batch=True)
        answer = Answer(reply, cost, "batch")
        answers.append(record(key, settings.name, settings.model, rows[key], answer))
        account.add(answer, new=True)
    cache.put_many(answers)
    path.unlink(missing_ok=True)  # its answers are cached now
    log.info(
        "%s: batch answered %d of %d rows; batches of this run cost %.4f",
        settings.name, len(answers), len(rows), account.batch_spent,
    )  # fmt: skip


class OpenAIBatch:
    def __init__(self, backend, settings, retrier, path: Path):
        self.client = backend.client
        self.backend = backend
        self.settings = settings
        self.retrier = retrier
        self.path = path

    def state(self, chunk: dict[str, str]) -> dict:
        """The batch's state: its rows and worst-case price from the start, ids as they come."""
        state = read_state(self.path)
        if not state:
            price = sum(worst_case(self.settings, source) for source in chunk.values())
            state = {"keys": list(chunk), "worst_case": price}
        return state

    async def call(self, what: str, make):
        return await self.retrier(make, f"{self.settings.name} batch: {what}")

    async def results(self, chunk: dict[str, str]):
        state = self.state(chunk)
        if "batch_id" not in state:
            lines = [
                {
                    "custom_id": key,
                    "method": "POST",
                    "url": "/v1/chat/completions",
                    "body": self.backend.body(source),
                }
                for key, source in chunk.items()
            ]
            data = "".join(json.dumps(line) + "\n" for line in lines).encode()
            if "file_id" not in state:
                upload = await self.call(
                    "upload",
                    lambda: self.client.files.create(
                        file=("batch.jsonl", data, "application/jsonl"), purpose="batch"
                    ),
                )
                state["file_id"] = upload.id
                write_json(state, self.path)
            batch = await self.call(
                "create",
                lambda: self.client.batches.create(
                    input_file_id=state["file_id"],
                    endpoint="/v1/chat/completions",
                    completion_window="24h",
                ),
            )
            state["batch_id"] = batch.id
            write_json(state, self.path)
            log.info("%s: OpenAI batch %s created", self.settings.name, batch.id)
        while True:
            batch = await self.call("poll", lambda: self.client.batches.retrieve(state["batch_id"]))
            if batch.status in ("completed", "failed", "expired", "cancelled"):
                break
            await asyncio.sleep(self.settings.batch_poll_seconds)
        if not batch.output_file_id:
            log.warning("%s: batch %s ended %s", self.settings.name, batch.id, batch.status)
            return []
        output = batch.output_file_id
        content = await self.call("download", lambda: self.client.files.content(output))
        # Each backend's parser comes with its client library, imported only where it is used.
        from regurgitate.generators.openai_backend import parse

        found = []
        for line in content.text.splitlines():
            row = json.loads(line)
            response = row.get("response") or {}
            if response.get("status_code") == 200:
                found.append((row["custom_id"], parse(response["body"])))
        return found


class AnthropicBatch(OpenAIBatch):
    async def results(self, chunk: dict[str, str]):
        batches = self.client.messages.batches
        state = self.state(chunk)
        if "batch_id" not in state:
            requests = [
                {"custom_id": key, "params": self.backend.body(source)}
                for key, source in chunk.items()
            ]
            batch = await self.call("create", lambda: batches.create(requests=requests))
            state["batch_id"] = batch.id
            write_json(state, self.path)
            log.info("%s: Anthropic message batch %s created", self.settings.name, batch.id)
        while True:
            batch = await self.call("poll", lambda: batches.retrieve(state["batch_id"]))
            if batch.processing_status == "ended":
                break
            await asyncio.sleep(self.settings.batch_poll_seconds)
        # Each backend's parser comes with its client library, imported only where it is used.
        from regurgitate.generators.anthropic_backend import parse

        found = []
        async for row in await self.call("download", lambda: batches.results(batch.id)):
            if row.result.type == "succeeded":
                found.append((row.custom_id, parse(row.result.message.model_dump())))
        return found
