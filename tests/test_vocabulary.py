"""The study's vocabulary: condition ids parse one way, and the workflow and the schema take
their names from it."""

import re

import pytest
import yaml
from conftest import REPO

from regurgitate.study.vocabulary import (
    EXPERIMENT_ORDER,
    EXPERIMENTS,
    NAME,
    QUALITY_METRICS,
    SCORES,
    WILDCARD_CONSTRAINTS,
    parse_condition,
)


@pytest.mark.parametrize(
    "condition, parts",
    [
        ("real", ("real", [], None, None)),
        ("self", ("self", [], None, None)),
        ("gen-weak", ("gen", ["weak"], None, None)),
        ("mixed-weak+strong_2", ("mixed", ["weak", "strong_2"], None, None)),
        ("mixed-a+b+c", ("mixed", ["a", "b", "c"], None, None)),
        ("ordered-weak-round_trip", ("ordered", ["weak"], "round_trip", None)),
        ("detector-strong", ("detector", ["strong"], None, None)),
        ("partial-weak-25", ("partial", ["weak"], None, 25)),
        ("sources-ordered-weak-oracle", ("sources", ["weak"], "oracle", None)),
        ("sources-detector-weak", ("sources", ["weak"], None, None)),
    ],
)
def test_condition_ids_parse(condition, parts):
    parsed = parse_condition(condition)
    assert (parsed["kind"], parsed["generators"], parsed["metric"], parsed["pct"]) == parts
    assert parsed["of"] == (condition.removeprefix("sources-") if parts[0] == "sources" else None)


@pytest.mark.parametrize(
    "condition",
    [
        "mixed-weak",
        "ordered-weak",
        "ordered-a-b-c",
        "detector-",
        "partial-weak-x",
        "gen-a+b",
        "gen-we-ak",
        "mixed-a+",
        "realx",
        "partial-weak",
        "sources-gen-weak",
        "sources-sources-detector-weak",
    ],
)
def test_bad_condition_ids_are_rejected(condition):
    with pytest.raises(ValueError, match="not a condition id"):
        parse_condition(condition)


SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())


def test_schema_enumerations_are_the_vocabulary():
    names = SCHEMA["$defs"]
    assert names["experiment"]["enum"] == list(EXPERIMENT_ORDER)
    assert sorted(EXPERIMENTS) == sorted(EXPERIMENT_ORDER)
    assert names["quality_metric"]["enum"] == list(QUALITY_METRICS)
    assert names["score"]["enum"] == list(SCORES)
    assert names["name"]["pattern"] == f"^{NAME}\\Z"


def test_wildcard_constraints_come_from_the_vocabulary():
    common = (REPO / "workflow" / "rules" / "common.smk").read_text()
    assert "**WILDCARD_CONSTRAINTS" in common
    assert re.fullmatch(WILDCARD_CONSTRAINTS["condition"], "mixed-weak+strong")
    assert not re.fullmatch(WILDCARD_CONSTRAINTS["condition"], "scratch/self")
    assert re.fullmatch(WILDCARD_CONSTRAINTS["experiment"], "finetune")


def test_regimes_are_one_name_in_schema_and_wildcards():
    from regurgitate.study.vocabulary import GENERATION_ZERO_REGIME, REGIMES

    assert SCHEMA["$defs"]["regime"]["enum"] == list(REGIMES)
    for regime in [GENERATION_ZERO_REGIME, *REGIMES]:
        assert re.fullmatch(WILDCARD_CONSTRAINTS["regime"], regime)
    assert not re.fullmatch(WILDCARD_CONSTRAINTS["regime"], "self")
