"""An API generator's configuration (`generators.<name>` with an `openai` or `anthropic`
backend), its defaults, its cache key and its prices."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field

from regurgitate.generators.prompts import Prompt, resolve_prompt

API_BACKENDS = ("openai", "anthropic")
KEY_VARIABLES = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
DEFAULT_CACHE_DIR = "resources/cache/llm"


class MissingKeyError(RuntimeError):
    """The environment variable that should hold an API key is unset or empty."""


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.0
    top_p: float | None = None
    max_tokens: int = 256
    seed: int | None = None  # OpenAI only
    logprobs: bool = False  # OpenAI only: the row's logprob is the sum over its tokens


@dataclass(frozen=True)
class ApiSettings:
    name: str
    backend: str
    model: str
    prompt: Prompt
    base_url: str | None = None
    api_key_env: str = ""
    sampling: Sampling = field(default_factory=Sampling)
    concurrency: int = 16
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    timeout: float = 60.0
    max_retries: int = 8
    backoff_seconds: float = 1.0  # mean delay of the first retry; doubles each attempt
    price_input: float = 0.0  # money per million input tokens
    price_output: float = 0.0
    batch_price_factor: float = 0.5  # the batch interfaces bill half
    budget: float | None = None
    batch: bool = False
    batch_poll_seconds: float = 60.0
    cache_dir: str = DEFAULT_CACHE_DIR

    @classmethod
    def from_config(cls, name: str, generator: dict, prompts: dict | None = None) -> ApiSettings:
        backend = generator["backend"]
        if backend not in API_BACKENDS:
            raise ValueError(f"generators.{name}.backend: {backend!r} is not an API backend")
        prices = generator.get("prices") or {}
        simple = {
            key: generator[key]
            for key in (
                "base_url",
                "concurrency",
                "requests_per_minute",
                "tokens_per_minute",
                "timeout",
                "max_retries",
                "backoff_seconds",
                "budget",
                "batch",
                "batch_poll_seconds",
                "cache_dir",
            )
            if generator.get(key) is not None
        }
        return cls(
            name=name,
            backend=backend,
            model=generator["model"],
            prompt=resolve_prompt(
                prompts, generator.get("prompt", "default"), generator.get("prompt_version")
            ),
            api_key_env=generator.get("api_key_env") or KEY_VARIABLES[backend],
            sampling=Sampling(**(generator.get("sampling") or {})),
            price_input=prices.get("input", 0.0),
            price_output=prices.get("output", 0.0),
            batch_price_factor=prices.get("batch_factor", 0.5),
            **simple,
        )

    def api_key(self) -> str:
        """The key from the environment; fails before any request, naming the variable."""
        key = os.environ.get(self.api_key_env, "").strip()
        if not key:
            raise MissingKeyError(
                f"generators.{self.name}: the environment variable {self.api_key_env} that "
                f"should hold the {self.backend} API key is not set (api_key_env names it)"
            )
        return key

    def identity(self) -> dict:
        """Everything that determines an answer, apart from the source."""
        return {
            "backend": self.backend,
            "base_url": self.base_url,
            "model": self.model,
            "sampling": vars(self.sampling),
            "prompt": self.prompt.identity(),
        }

    def cache_key(self, source: str) -> str:
        text = json.dumps({**self.identity(), "source": source}, sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def cost(self, input_tokens: int, output_tokens: int, batch: bool = False) -> float:
        cost = (input_tokens * self.price_input + output_tokens * self.price_output) / 1e6
        return cost * (self.batch_price_factor if batch else 1.0)

    def estimate_input_tokens(self, source: str) -> int:
        """A generous guess (3 characters a token) for rate limits and budget reservations."""
        system, user = self.prompt.messages(source)
        return (len(system) + len(user)) // 3 + 16
