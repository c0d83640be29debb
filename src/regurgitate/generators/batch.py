"""The providers' batch interfaces (OpenAI Batch API, Anthropic Message Batches): cheaper, slower.

A batch's ids are written to a state file beside the cache before anything waits on them, so a
restarted run polls the batch it already paid for instead of sending another. Answers go into
the same cache as single requests; rows a batch did not answer are then requested one by one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from pathlib import Path

from regurgitate.generators.cache import Answer, Cache
from regurgitate.io import write_json

log = logging.getLogger(__name__)
CHUNK = {"openai": 50_000, "anthropic": 100_000}  # the providers' limits on requests a batch


def state_path(settings, keys: list[str]) -> Path:
    digest = hashlib.sha256("".join(sorted(keys)).encode()).hexdigest()[:20]
    return Path(settings.cache_dir) / "batches" / f"{settings.name}-{digest}.json"


def read_state(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


async def run_batches(backend, settings, pending: dict[str, str], cache: Cache, retrier, account):
    items = list(pending.items())
    size = CHUNK[settings.backend]
    for start in range(0, len(items), size):
        chunk = dict(items[start : start + size])
        path = state_path(settings, list(chunk))
        run = OpenAIBatch if settings.backend == "openai" else AnthropicBatch
        results = await run(backend, settings, retrier, path).results(chunk)
        for key, reply in results:
            if key not in chunk:
                continue
            cost = settings.cost(reply.input_tokens, reply.output_tokens, batch=True)
            answer = Answer(reply, cost, "batch")
            cache.put(key, settings.name, settings.model, chunk[key], answer)
            account.add(answer, new=True)
            account.batch_rows += 1
        path.unlink(missing_ok=True)  # its answers are cached now
        log.info("%s: batch answered %d of %d rows", settings.name, len(results), len(chunk))


class OpenAIBatch:
    def __init__(self, backend, settings, retrier, path: Path):
        self.client = backend.client
        self.backend = backend
        self.settings = settings
        self.retrier = retrier
        self.path = path

    async def call(self, what: str, make):
        return await self.retrier(make, f"{self.settings.name} batch: {what}")

    async def results(self, chunk: dict[str, str]):
        state = read_state(self.path)
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
        state = read_state(self.path)
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
        from regurgitate.generators.anthropic_backend import parse

        found = []
        async for row in await self.call("download", lambda: batches.results(batch.id)):
            if row.result.type == "succeeded":
                found.append((row.custom_id, parse(row.result.message.model_dump())))
        return found
