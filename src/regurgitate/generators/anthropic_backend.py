"""Messages through the official `anthropic` client."""

from __future__ import annotations

import anthropic

from regurgitate.generators.cache import Reply
from regurgitate.generators.retry import malformed_on_error
from regurgitate.generators.settings import ApiSettings

FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "refusal": "refusal",
}


class AnthropicBackend:
    transient = (anthropic.APIConnectionError, anthropic.APIResponseValidationError)

    def __init__(self, settings: ApiSettings, key: str):
        self.settings = settings
        self.client = anthropic.AsyncAnthropic(
            api_key=key, base_url=settings.base_url, timeout=settings.timeout, max_retries=0
        )

    def body(self, source: str, model: str | None = None) -> dict:
        system, user = self.settings.prompt.messages(source)
        sampling = self.settings.sampling
        body = {
            "model": model or self.settings.model,
            "system": system,
            "messages": [{"role": "user", "content": user}],
            "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
        }
        if sampling.top_p is not None:
            body["top_p"] = sampling.top_p
        return body

    async def complete(self, source: str) -> Reply:
        body = self.body(source)
        # This client's create() no longer names the sampling keys; the API still takes them.
        sampling = {k: body.pop(k) for k in ("temperature", "top_p") if k in body}
        message = await self.client.messages.create(**body, extra_body=sampling)
        return parse(message.model_dump())

    async def close(self) -> None:
        await self.client.close()


@malformed_on_error
def parse(data: dict) -> Reply:
    """A message (as JSON) to a reply; also reads Message Batches results."""
    text = "".join(block.get("text", "") for block in data["content"] if block["type"] == "text")
    usage = data.get("usage") or {}
    reason = data.get("stop_reason") or "end_turn"
    return Reply(
        text=text,
        finish_reason=FINISH.get(reason, reason),
        input_tokens=int(usage.get("input_tokens") or 0),
        output_tokens=int(usage.get("output_tokens") or 0),
    )
