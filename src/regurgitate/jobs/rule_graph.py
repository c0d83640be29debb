"""The rule graph of the study: recorded from the run's DAG as the run starts (the `onstart`
handler of workflow/rules/common.smk passes plain names, never Snakemake's objects), and drawn
by the `figure_rule_graph` job of workflow/rules/report.smk for the report, in place of
Snakemake's job graph.

The record is JSON, its rules and their lists sorted, so the same DAG gives the same bytes:

    {"rules": {"<rule>": {"depends_on": ["<rule whose output it reads>", ...],
                          "jobs": <its jobs in the DAG>, "file": "<its rule file>"}, ...}}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from regurgitate.io import read_json, write_json
from regurgitate.plots.rule_graph import FINAL_RULE, RuleGraph, plot_rule_graph
from regurgitate.plots.style import save_figure


class MissingRuleGraphError(FileNotFoundError):
    """The figure of the rule graph was asked for, but no run of the whole study recorded it."""


def record_rule_graph(
    path: str | Path,
    depends_on: Mapping[str, Iterable[str]],
    *,
    jobs: Mapping[str, int] | None = None,
    files: Mapping[str, str] | None = None,
    final_rule: str = FINAL_RULE,
) -> bool:
    """Write the rule graph of a run's DAG to `path`: per rule, the rules whose output its jobs
    read, and (where given) its number of jobs and its rule file. Only a DAG that holds
    `final_rule` (`all`) is the whole study's: a run of some targets alone leaves the record of
    the last whole run as it is. Returns whether it wrote."""
    if final_rule not in depends_on:
        return False
    rules = {rule: set(named) for rule, named in depends_on.items()}
    for named in list(rules.values()):
        for rule in named:
            rules.setdefault(rule, set())
    record = {}
    for rule in sorted(rules):
        entry: dict = {"depends_on": sorted(rules[rule])}
        if jobs is not None:
            entry["jobs"] = int(jobs.get(rule, 0))
        if files is not None and rule in files:
            entry["file"] = str(files[rule])
        record[rule] = entry
    write_json({"rules": record}, path)
    return True


def read_rule_graph(path: str | Path) -> RuleGraph:
    """The rule graph recorded at `path`; a clear error where there is none."""
    if not Path(path).exists():
        raise MissingRuleGraphError(
            f"no rule graph at {path}: it is recorded when a run of the whole study starts "
            "(`snakemake --cores N`, whose DAG holds rule all), and this run did not record one; "
            "run the whole study rather than this figure alone"
        )
    rules = read_json(path)["rules"]
    return RuleGraph(
        depends_on={rule: list(entry["depends_on"]) for rule, entry in rules.items()},
        jobs={rule: entry["jobs"] for rule, entry in rules.items() if "jobs" in entry},
        files={rule: entry["file"] for rule, entry in rules.items() if "file" in entry},
    )


def figure_rule_graph(*, graph_path: Path, png: Path, pdf: Path) -> None:
    """Draw the recorded rule graph (regurgitate.plots.rule_graph)."""
    save_figure(plot_rule_graph(read_rule_graph(graph_path)), png, pdf)
