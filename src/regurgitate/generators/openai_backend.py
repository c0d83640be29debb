"""Chat completions through the official `openai` client (OpenAI or any compatible server)."""

from __future__ import annotations

import openai

from regurgitate.generators.cache import Reply
from regurgitate.generators.retry import malformed_on_error
from regurgitate.generators.settings import ApiSettings

FINISH = {"stop": "stop", "length": "length", "content_filter": "refusal"}


class OpenAIBackend:
    # A connection error covers timeouts (a subclass) and dropped connections.
    transient = (openai.APIConnectionError, openai.APIResponseValidationError)

    def __init__(self, settings: ApiSettings, key: str):
        self.settings = settings
        # Retries are ours (observable, Retry-After with jitter, malformed bodies too).
        self.client = openai.AsyncOpenAI(
            api_key=key, base_url=settings.base_url, timeout=settings.timeout, max_retries=0
        )

    def body(self, source: str, model: str | None = None) -> dict:
        system, user = self.settings.prompt.messages(source)
        sampling = self.settings.sampling
        body = {
            "model": model or self.settings.model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ],
            "temperature": sampling.temperature,
        }
        # OpenAI's own models want max_completion_tokens; compatible servers know max_tokens.
        limit = "max_tokens" if self.settings.base_url else "max_completion_tokens"
        body[limit] = sampling.max_tokens
        if sampling.top_p is not None:
            body["top_p"] = sampling.top_p
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        if sampling.logprobs:
            body["logprobs"] = True
        return body

    async def complete(self, source: str) -> Reply:
        response = await self.client.chat.completions.create(**self.body(source))
        return parse(response.model_dump())

    async def close(self) -> None:
        await self.client.close()


@malformed_on_error
def parse(data: dict) -> Reply:
    """A chat completion (as JSON) to a reply; also reads the bodies of Batch API results."""
    choice = data["choices"][0]
    message = choice.get("message") or {}
    finish = FINISH.get(choice.get("finish_reason") or "stop", choice.get("finish_reason"))
    if message.get("refusal"):
        finish = "refusal"
    usage = data.get("usage") or {}
    logprobs = (choice.get("logprobs") or {}).get("content")
    return Reply(
        text=message.get("content") or message.get("refusal") or "",
        finish_reason=finish,
        input_tokens=int(usage.get("prompt_tokens") or 0),
        output_tokens=int(usage.get("completion_tokens") or 0),
        logprob=sum(t["logprob"] for t in logprobs) if logprobs else None,
    )
