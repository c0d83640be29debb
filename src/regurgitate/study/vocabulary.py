"""The study's names, written once: experiments, pools, condition ids, sources of targets,
mitigation strategies and scores.

A name here is the same string in the config, in result paths, in tables and in figure legends.
The workflow's wildcard constraints are built from these patterns (`WILDCARD_CONSTRAINTS`), the
config schema's enumerations are checked against them (tests/test_vocabulary.py), and tables and
figures take their labels from here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# --- experiments ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Experiment:
    id: str  # the config key, the path part, the `experiment` column
    label: str  # the paper's name for it
    title: str  # the title of its learning-curve figure
    short_title: str  # a panel title in figures that show every experiment
    legend: str  # its entry in legends that mark experiments


SCRATCH, FINETUNE = "scratch", "finetune"
EXPERIMENTS = {
    FINETUNE: Experiment(
        FINETUNE,
        "E1",
        "Base model fine-tuned (E1): human vs generated targets",
        "E1: fine-tuned base",
        "E1 fine-tune",
    ),
    SCRATCH: Experiment(
        SCRATCH,
        "E2",
        "Students trained from scratch (E2): human vs generated targets",
        "E2: students from scratch",
        "E2 scratch",
    ),
}
# The order experiments run and are reported in: E2 always, E1 where `finetune` is configured.
EXPERIMENT_ORDER = (SCRATCH, FINETUNE)

# --- pools ------------------------------------------------------------------------------------

POOLS = ("teacher", "student", "detector", "dev", "test")

# --- sources of targets and condition ids -----------------------------------------------------

# The human references as a source of targets (mechanisms); no generator may take this name.
HUMAN = "human"

# A generator or metric name. It holds no "-" or "+", so every condition id parses one way only.
NAME = r"[A-Za-z0-9_]+"
MIX = rf"{NAME}(\+{NAME})+"
PERCENT = r"[0-9]+"

REAL, SELF = "real", "self"
# The conditions that choose which sources of the pool they train on (S1, S3): a `sources-`
# control trains on the same sources with the human targets.
SELECTING = rf"ordered-{NAME}-{NAME}|detector-{NAME}"
# Each kind of condition and the pattern of its ids (docs/study.md: conditions are curricula).
CONDITION_KINDS = {
    "real": REAL,
    "self": SELF,
    "gen": rf"gen-{NAME}",
    "mixed": rf"mixed-{MIX}",
    "ordered": rf"ordered-{NAME}-{NAME}",
    "detector": rf"detector-{NAME}",
    "partial": rf"partial-{NAME}-{PERCENT}",
    "sources": rf"sources-({SELECTING})",
}
CONDITION = "|".join(CONDITION_KINDS.values())
_CONDITION = re.compile(rf"^({CONDITION})$")


def gen_condition(generator: str) -> str:
    return f"gen-{generator}"


def mixed_condition(generators: list[str]) -> str:
    return "mixed-" + "+".join(generators)


def ordered_condition(generator: str, metric: str) -> str:
    return f"ordered-{generator}-{metric}"


def detector_condition(generator: str) -> str:
    return f"detector-{generator}"


def partial_condition(generator: str, percent: int) -> str:
    return f"partial-{generator}-{percent}"


def sources_condition(selecting: str) -> str:
    """The control of an S1 or S3 condition: its sources, in its order, with human targets."""
    return f"sources-{selecting}"


def parse_condition(condition: str) -> dict:
    """The parts of a condition id: {"kind", "generators", "metric", "pct", "of"}.

    kind is a key of CONDITION_KINDS; generators lists the generator names in the id (empty for
    real and self); metric and pct are None unless the kind has one; `of` is the condition a
    `sources-` control selects its sources like (None for the other kinds). Raises ValueError
    for an id that matches no kind.
    """
    if not _CONDITION.match(condition):
        raise ValueError(f"not a condition id: {condition!r}")
    kind, _, rest = condition.partition("-")
    if kind == "sources":
        return {**parse_condition(rest), "kind": kind, "of": rest}
    parts = rest.split("-")
    return {
        "kind": kind,
        "generators": rest.split("+") if kind == "mixed" else parts[:1] if rest else [],
        "metric": parts[1] if kind == "ordered" else None,
        "pct": int(parts[1]) if kind == "partial" else None,
        "of": None,
    }


def condition_kind(condition: str) -> str:
    return parse_condition(condition)["kind"]


# How legends write a quality metric where its id would read as code.
METRIC_TITLES = {"round_trip": "round trip", "dual_cross_entropy": "dual cross-entropy"}


def metric_title(metric: str) -> str:
    return METRIC_TITLES.get(metric, metric.replace("_", " "))


def condition_title(condition: str) -> str:
    """The readable name of a condition id in figure legends and labels, derived from the id so
    that a figure never names a condition the tables do not (e.g. "ordered-weak-dual_cross_entropy"
    is "S1 ordered by dual cross-entropy (weak)"). Raises ValueError for an id of no kind."""
    parts = parse_condition(condition)
    kind, generators = parts["kind"], parts["generators"]
    if kind == "sources":
        return f"human targets, sources of {condition_title(parts['of'])}"
    if kind == REAL:
        return "real (human targets)"
    if kind == SELF:
        return "self (base model's own translations)"
    if kind == "gen":
        return f"generated by {generators[0]}"
    if kind == "partial":
        return f"{parts['pct']}% human, the rest by {generators[0]}"
    strategy = STRATEGY_OF_KIND[kind]
    if kind == "mixed":
        return f"{strategy} mixed: {' + '.join(generators)}"
    if kind == "ordered":
        return f"{strategy} ordered by {metric_title(parts['metric'])} ({generators[0]})"
    return f"{strategy} ranked by detector ({generators[0]})"


# --- mitigations ------------------------------------------------------------------------------

# S1's per-pair quality metrics: the <metric> of ordered-<g>-<metric>.
QUALITY_METRICS = ("confidence", "consensus", "round_trip", "dual_cross_entropy", "oracle")
# The metric that reads the human reference: an upper bound for S1, not a deployable strategy.
ORACLE = "oracle"


@dataclass(frozen=True)
class Strategy:
    id: str  # S1, S2, S3
    kind: str  # the kind of its conditions
    name: str  # how figures call it
    table: str | None  # the table of results/tables/ that only this strategy makes


STRATEGIES = {
    "S1": Strategy("S1", "ordered", "quality-ordered", "quality"),
    "S2": Strategy("S2", "mixed", "mixed generators", None),
    "S3": Strategy("S3", "detector", "detector-ranked", "detector"),
}
STRATEGY_OF_KIND = {strategy.kind: strategy.id for strategy in STRATEGIES.values()}

# --- scores -----------------------------------------------------------------------------------

# The corpus scores every run carries (sacreBLEU), as tables name them and figures label them.
SCORES = {"bleu": "BLEU", "chrf": "chrF"}

# --- recursion: generations trained on their predecessors' output -----------------------------

# The experiment's id: its config block, its folder under results/, its table and figure.
RECURSION = "recursion"
RECURSION_TITLE = "Recursive training: each generation learns from its predecessor's output"


@dataclass(frozen=True)
class Regime:
    id: str  # the config value, the path part, the `regime` column, the legend entry
    description: str  # what generation n >= 1 trains on (the legend's long form, docs)


REPLACE, ACCUMULATE = "replace", "accumulate"
ACCUMULATE_FIXED, REAL_SHARE = "accumulate-fixed", "real-share"
REGIMES = {
    REPLACE: Regime(REPLACE, "generation n-1's translations only"),
    ACCUMULATE: Regime(ACCUMULATE, "the human pairs and every earlier generation's translations"),
    ACCUMULATE_FIXED: Regime(
        ACCUMULATE_FIXED, "the accumulated mixture, subsampled to one target per source"
    ),
    REAL_SHARE: Regime(REAL_SHARE, "a configured share of human pairs, the rest generation n-1's"),
}
# Generation 0 trains on the human pairs (the `real` condition) and is shared by every regime: its
# folder, table rows and legend entry take the id `real`. (It is not `self`: no generation trains
# on its own output, generation n trains on generation n-1's.)
GENERATION_ZERO_REGIME = REAL


def generation_origin(generation: int) -> str:
    """The `origin` of a curriculum row whose target generation `generation` wrote."""
    return f"generation-{generation}"


# --- the workflow's wildcards -----------------------------------------------------------------

WILDCARD_CONSTRAINTS = {
    "experiment": "|".join(EXPERIMENT_ORDER),
    "condition": CONDITION,
    "selecting": SELECTING,
    "generator": NAME,
    "mix": MIX,
    "metric": NAME,
    "percent": PERCENT,
    "source": NAME,
    "pool": "|".join(POOLS),
    "size": "[0-9]+",
    "seed": "[0-9]+",
    # Longer ids first, so that no id stops at another's prefix.
    "regime": "|".join(sorted([GENERATION_ZERO_REGIME, *REGIMES], key=len, reverse=True)),
    "generation": "[0-9]+",
}
