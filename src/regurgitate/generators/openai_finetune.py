"""E1 through the OpenAI fine-tuning API: upload a curriculum prefix as chat-format JSONL, create
the job, poll it, record the fine-tuned model's id.

Each step's id (file, job) is written to `state_path` the moment the API returns it, so a
restarted run polls the job it already paid for instead of uploading and training again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from pathlib import Path

import polars as pl

from regurgitate.generators.llm import make_backend, make_retrier
from regurgitate.generators.retry import Redactor
from regurgitate.generators.settings import ApiSettings
from regurgitate.io import write_json, write_lines

log = logging.getLogger(__name__)
FINAL = ("succeeded", "failed", "cancelled")


class FineTuneError(RuntimeError):
    """A fine-tuning job that ended without a model, or a state file that does not fit."""


def training_lines(curriculum: pl.DataFrame, settings: ApiSettings) -> list[str]:
    """One chat per pair: the generator's own prompt, the curriculum's target as the answer."""
    lines = []
    for source, target in zip(curriculum["source"], curriculum["target"], strict=True):
        system, user = settings.prompt.messages(source)
        messages = [
            {"role": "system", "content": system},
            {"role": "user", "content": user},
            {"role": "assistant", "content": target},
        ]
        lines.append(json.dumps({"messages": messages}, ensure_ascii=False))
    return lines


def finetune(
    curriculum: pl.DataFrame,
    name: str,
    generator: dict,
    prompts: dict | None,
    seed: int,
    state_path: Path,
    hyperparameters: dict | None = None,
    suffix: str | None = None,
    poll_seconds: float = 60.0,
) -> dict:
    """Fine-tune the generator's model on `curriculum` (`source`, `target`; every row is used);
    the uploaded chat-format JSONL is kept beside `state_path` (same name, `.jsonl`).

    Returns the state record: file_id, job_id, status, base_model, fine_tuned_model, seed,
    rows, trained_tokens. `generators.<name>` must use the openai backend."""
    settings = ApiSettings.from_config(name, generator, prompts)
    if settings.backend != "openai":
        raise FineTuneError(f"generators.{name}: fine-tuning needs the openai backend")
    key = settings.api_key()
    lines = training_lines(curriculum, settings)
    write_lines(lines, state_path.with_suffix(".jsonl"))  # what was uploaded, for the record
    data = ("\n".join(lines) + "\n").encode("utf-8")
    digest = hashlib.sha256(data).hexdigest()
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    if state and state.get("training_sha256") != digest:
        raise FineTuneError(
            f"{state_path} records a job for other training data; delete it to train anew"
        )
    state.update(training_sha256=digest, base_model=settings.model, seed=seed)
    state["rows"] = curriculum.height
    options = {"hyperparameters": hyperparameters} if hyperparameters else {}
    if suffix:
        options["suffix"] = suffix
    with Redactor(key) as redact:
        steps = _run(settings, key, redact, data, state, state_path, options, poll_seconds)
        return asyncio.run(steps)


async def _run(settings, key, redact, data, state, state_path, options, poll):
    backend = make_backend(settings, key)
    client = backend.client
    retry = make_retrier(settings, backend, redact)

    def save() -> None:
        write_json(state, state_path)

    try:
        if "file_id" not in state:
            upload = await retry(
                lambda: client.files.create(
                    file=("train.jsonl", data, "application/jsonl"), purpose="fine-tune"
                ),
                f"{settings.name} fine-tune upload",
            )
            state["file_id"] = upload.id
            save()
            log.info("uploaded %d training pairs as %s", state["rows"], upload.id)
        if "job_id" not in state:
            job = await retry(
                lambda: client.fine_tuning.jobs.create(
                    model=settings.model, training_file=state["file_id"], seed=state["seed"],
                    **options,
                ),
                f"{settings.name} fine-tune create",
            )  # fmt: skip
            state["job_id"] = job.id
            save()
            log.info("created fine-tuning job %s on %s", job.id, settings.model)
        while True:
            job = await retry(
                lambda: client.fine_tuning.jobs.retrieve(state["job_id"]),
                f"{settings.name} fine-tune poll",
            )
            if job.status != state.get("status"):
                log.info("job %s: %s", job.id, job.status)
                state["status"] = job.status
                save()
            if job.status in FINAL:
                break
            await asyncio.sleep(poll)
    finally:
        await backend.close()
    if job.status != "succeeded":
        error = redact(str(getattr(job, "error", None) or ""))
        raise FineTuneError(f"fine-tuning job {job.id} ended {job.status}: {error}")
    state.update(fine_tuned_model=job.fine_tuned_model, trained_tokens=job.trained_tokens)
    save()
    return state
