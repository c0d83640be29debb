"""Jobs of workflow/rules/report.smk: each experiment's table and learning curves, the
generators' own scores, and every table as a page of the report."""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl

from regurgitate.analysis.aggregate import generator_table, load_runs, summarise
from regurgitate.io import atomic_path, read_json, write_table
from regurgitate.plots.learning_curves import learning_curves
from regurgitate.plots.tables import table_page
from regurgitate.study.vocabulary import condition_kind

log = logging.getLogger(__name__)

# The experiment figure draws these; partial mixes and mitigations have figures of their own.
LEARNING_CURVE_KINDS = ("real", "self", "gen")


def table_experiment(run_paths: list[str], out: Path) -> pl.DataFrame:
    """Mean and 95% interval over seeds of every condition and size of one experiment."""
    summary = summarise(load_runs(run_paths))
    log.info("%d runs summarised into %d rows", len(run_paths), summary.height)
    write_table(summary, out)
    return summary


def figure_experiment(
    summary_path: Path, png: Path, pdf: Path, title: str, reference_metrics: dict[str, str]
) -> None:
    """The learning curves of one experiment's real, self and gen- conditions; `reference_metrics`
    maps a line's label to a metrics JSON whose BLEU it draws."""
    summary = pl.read_csv(summary_path)
    kinds = pl.Series([condition_kind(c) for c in summary["condition"]])
    summary = summary.filter(kinds.is_in(LEARNING_CURVE_KINDS))
    lines = {label: read_json(path)["bleu"] for label, path in reference_metrics.items()}
    learning_curves(summary, png, pdf, title=title, reference_lines=lines)


def table_generators(metric_paths: list[str], out: Path) -> pl.DataFrame:
    table = generator_table([read_json(path) for path in metric_paths])
    write_table(table, out)
    return table


def table_html(csv: Path, out: Path) -> None:
    """The report's page of a table: the CSV as written, read as text so nothing is re-rounded."""
    frame = pl.read_csv(csv, infer_schema=False)
    with atomic_path(out) as tmp:
        tmp.write_text(table_page(frame, str(csv)), encoding="utf-8")
