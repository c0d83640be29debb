"""What the JSON schema cannot say about a configuration, and the values derived from it."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value that is well-formed but does not fit the rest; names the key."""


def check_config(config: dict) -> None:
    """Cross-key checks, run before any job (the schema has checked each key on its own)."""
    architectures = config["architectures"]
    for name, generator in config["generators"].items():
        if generator["backend"] != "local":
            check_api_generator(name, generator, config.get("prompts"))
        elif generator["architecture"] not in architectures:
            raise ConfigError(
                f"generators.{name}.architecture: {generator['architecture']!r} is not one of "
                f"the architectures {sorted(architectures)}"
            )
    scratch = config["scratch"]
    if scratch["architecture"] not in architectures:
        raise ConfigError(
            f"scratch.architecture: {scratch['architecture']!r} is not one of the "
            f"architectures {sorted(architectures)}"
        )
    self_name = scratch["self_generator"]
    if self_name not in config["generators"]:
        raise ConfigError(
            f"scratch.self_generator: {self_name!r} is not one of the generators "
            f"{sorted(config['generators'])}"
        )
    self_generator = config["generators"][self_name]
    if self_generator["backend"] != "local":
        raise ConfigError(
            f"scratch.self_generator: {self_name!r} is an {self_generator['backend']} "
            f"generator, but `self` (E2) is the student's own architecture translating its own "
            f"data, so it must be a local generator (backend: local) with architecture "
            f"{scratch['architecture']!r}; API generators give gen-<name> conditions"
        )
    if self_generator["architecture"] != scratch["architecture"]:
        raise ConfigError(
            f"scratch.self_generator: {self_name!r} has architecture "
            f"{self_generator['architecture']!r}, but `self` must share the student's "
            f"architecture {scratch['architecture']!r} (scratch.architecture)"
        )
    student_pool = config["pools"]["student"]
    if student_pool is not None and max(scratch["sizes"]) > student_pool:
        raise ConfigError(
            f"scratch.sizes: {max(scratch['sizes'])} pairs exceed pools.student={student_pool}"
        )
    corpus = config["corpus"]
    if corpus.get("test_tsv") is None and not config["pools"]["test"]:
        raise ConfigError("pools.test: must be positive unless corpus.test_tsv names a test file")


def check_api_generator(name: str, generator: dict, prompts: dict | None) -> None:
    from regurgitate.generators.prompts import resolve_prompt

    key = f"generators.{name}"
    try:
        resolve_prompt(prompts, generator.get("prompt", "default"), generator.get("prompt_version"))
    except KeyError as err:
        raise ConfigError(f"{key}.prompt: {err.args[0]}") from None
    prices = generator.get("prices") or {}
    if generator.get("budget") is not None and not (prices.get("input") or prices.get("output")):
        raise ConfigError(
            f"{key}.budget: a budget needs {key}.prices (input and output per million tokens) "
            "to count what is spent"
        )
    sampling = generator.get("sampling") or {}
    if generator["backend"] == "anthropic":
        for option in ("seed", "logprobs"):
            if sampling.get(option):
                raise ConfigError(f"{key}.sampling.{option}: the anthropic backend has no {option}")
    limit = generator.get("tokens_per_minute")
    if limit is not None and limit < sampling.get("max_tokens", 256):
        raise ConfigError(
            f"{key}.tokens_per_minute: {limit} is less than one request's "
            f"{key}.sampling.max_tokens ({sampling.get('max_tokens', 256)})"
        )


def training_settings(config: dict, *overrides: dict | None) -> dict:
    """The top-level `training` block with later blocks' keys replacing earlier ones."""
    settings = dict(config["training"])
    for override in overrides:
        settings.update(override or {})
    return settings


def decoding_settings(config: dict, override: dict | None = None) -> dict:
    return {**config["decoding"], **(override or {})}


def cross_generators(config: dict) -> list[str]:
    """Generators that give a `gen-<g>` condition: all but the one that plays `self`."""
    return [g for g in config["generators"] if g != config["scratch"]["self_generator"]]


def scratch_conditions(config: dict) -> list[str]:
    return ["real", "self"] + [f"gen-{g}" for g in cross_generators(config)]
