"""A configuration as the user wrote it, checked for what YAML and the schema let through.

PyYAML keeps the last of two equal keys without a word, and its tab error reaches Snakemake's
message without a line; Snakemake reads nested `--config` values as strings; JSON Schema counts
`100.0` as an integer. Each of these would run a study other than the one written, or fail deep
inside a job, so they are refused here, naming the file and line or the key.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from pathlib import Path

import jsonschema
import yaml

from regurgitate.study.config import ConfigError


class _StrictLoader(yaml.SafeLoader):
    """A YAML loader that refuses a mapping key given twice."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise ConfigError(
                f"{key_node.start_mark.name}, line {line}: the key {key!r} appears twice in one "
                f"block (first on line {seen[key]}); YAML would keep only the last one. Remove "
                "one of them, or merge the two blocks"
            )
        seen[key] = line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_config_file(path: str | Path) -> dict:
    """Parse a YAML config file, refusing duplicate keys and naming the line of a syntax error
    (a tab used for indentation is the usual one)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the config file: {err}") from None
    try:
        data = yaml.load(_named(text, path), Loader=_StrictLoader)  # noqa: S506 - a SafeLoader
    except yaml.MarkedYAMLError as err:
        raise ConfigError(_syntax_message(path, text, err)) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file is a mapping of keys (seed:, corpus:, ...)")
    return data


def _named(text: str, path: Path):
    """The text as a stream whose marks carry the file's name."""
    stream = io.StringIO(text)
    stream.name = str(path)
    return stream


def _syntax_message(path: Path, text: str, err: yaml.MarkedYAMLError) -> str:
    mark = err.problem_mark or err.context_mark
    line = mark.line + 1 if mark else None
    where = f"{path}, line {line}" if line else str(path)
    lines = text.splitlines()
    if line and line <= len(lines) and "\t" in lines[line - 1]:
        return (
            f"{where}: a tab character; YAML indents with spaces only. Replace the tab with spaces"
        )
    return f"{where}: not valid YAML: {err.problem or err}"


def check_config_files(paths: Iterable[str | Path]) -> None:
    for path in paths:
        read_config_file(path)


def parse_overrides(entries: Iterable[str] | None) -> dict:
    """`--config key=value` entries with their values read as YAML, as a config file's would be
    (Snakemake reads the values inside a nested `{...}` as strings)."""
    overrides: dict = {}
    for entry in entries or ():
        key, sep, value = entry.partition("=")
        if not sep:
            continue  # Snakemake itself refuses it with its own message
        try:
            parsed = yaml.load(value, Loader=_StrictLoader) if value else None  # noqa: S506
        except (yaml.YAMLError, ConfigError) as err:
            raise ConfigError(f"--config {key}: the value is not valid YAML: {err}") from None
        merge_config(overrides, {key: parsed})
    return overrides


def merge_config(config: dict, overrides: Mapping) -> dict:
    """Merge `overrides` into `config` in place, block by block, as Snakemake merges them."""
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(config.get(key), dict):
            merge_config(config[key], value)
        else:
            config[key] = value
    return config


def _is_integer(_checker, instance) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


def _is_number(_checker, instance) -> bool:
    return isinstance(instance, int | float) and not isinstance(instance, bool)


_TYPES = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine_many(
    {"integer": _is_integer, "number": _is_number}
)
_StrictValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator, type_checker=_TYPES
)


def key_path(path: Iterable) -> str:
    """A config key as the user writes it: `scratch.sizes[0]`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text or "(the whole config)"


def check_types(config: dict, schema: dict) -> None:
    """Validate with integers taken literally: `100.0` is refused where a count is expected."""
    error = jsonschema.exceptions.best_match(_StrictValidator(schema).iter_errors(config))
    if error is None:
        return
    key = key_path(error.absolute_path)
    value = error.instance
    if isinstance(value, float) and value.is_integer() and _wants_integer(error):
        raise ConfigError(
            f"{key}: {value!r} is not a whole number as written; write {int(value)} (a count, "
            "seed or size is an integer, and 100.0 would reach paths and tables as '100.0')"
        )
    raise ConfigError(f"{key}: {error.message}")


def _wants_integer(error: jsonschema.ValidationError) -> bool:
    """Whether the schema asked for an integer here, directly or as one of several options
    (`[integer, "null"]`, anyOf)."""
    if error.validator == "type" and "integer" in _as_list(error.validator_value):
        return True
    return any(_wants_integer(option) for option in error.context or ())


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def read_schema(path: str | Path) -> dict:
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def record_run(path: str | Path, configfiles: list, overrides: list[str], config: dict) -> None:
    """Write what a run is made with: its config files, its --config overrides and the config
    they gave, so that a later report (or run) can say which config the results came from."""
    from regurgitate.io import write_json

    files = [str(f) for f in configfiles]
    write_json({"configfiles": files, "overrides": list(overrides), "config": config}, path)


def run_command(record: dict) -> str:
    """The options that give a run's config again, as a command line's tail."""
    files = " ".join(f"--configfile {f}" for f in record["configfiles"])
    overrides = " ".join(f"'{o}'" for o in record["overrides"])
    return files + (f" --config {overrides}" if overrides else "")


def check_report_config(path: str | Path, config: dict) -> None:
    """Refuse a report whose config is not the one the results were made with: it would look
    for another study's figures, and say nothing about the config."""
    import json

    if not Path(path).exists():
        return
    record = json.loads(Path(path).read_text(encoding="utf-8"))
    if json.loads(json.dumps(config)) == record["config"]:
        return
    options = run_command(record)
    raise ConfigError(
        f"the results here were made with {options or 'the default config/config.yaml'}, "
        f"not with this report's config; build the report with the run's options: "
        f"snakemake --report report.html {options}".rstrip()
    )
