"""What the JSON schema cannot say about a configuration, and the values derived from it."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value that is well-formed but does not fit the rest; names the key."""


def check_config(config: dict) -> None:
    """Cross-key checks, run before any job (the schema has checked each key on its own)."""
    architectures = config["architectures"]
    for name, generator in config["generators"].items():
        if generator["architecture"] not in architectures:
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
