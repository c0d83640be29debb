"""Jobs of workflow/rules/report.smk: each experiment's table and learning curves, the
generators' own scores, and every table as a page of the report."""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl

from regurgitate.analysis.aggregate import (
    GROUP_KEY,
    generator_table,
    load_run_translations,
    summarise,
)
from regurgitate.analysis.significance import differences_to_baseline
from regurgitate.io import atomic_path, read_json, write_table
from regurgitate.plots.learning_curves import learning_curves
from regurgitate.plots.tables import table_page
from regurgitate.study.vocabulary import REAL, condition_kind

log = logging.getLogger(__name__)

# The experiment figure draws these; partial mixes and mitigations have figures of their own.
LEARNING_CURVE_KINDS = ("real", "self", "gen")


def table_experiment(
    *,
    run_paths: list[str],
    hypothesis_paths: list[str],
    test_path: Path,
    out: Path,
    seed: int,
    base_path: Path | None = None,
) -> pl.DataFrame:
    """Mean and 95% interval over seeds of every condition and size of one experiment, and each
    condition's BLEU difference to `real` at the same size with the paired tests over test
    sentences (analysis.significance); `hypothesis_paths[i]` are the test translations of the
    run whose metrics are `run_paths[i]`. The steps whose weights the runs kept (`select`,
    `selected_step_min/max`), the share of runs that early stopping ended (`early_stopped`; the
    others hit a step or epoch cap) and, for E1, the base model's BLEU (`base_path`) stand
    beside."""
    runs, hypotheses = load_run_translations(run_paths, hypothesis_paths)
    references = pl.read_parquet(test_path)["target"].to_list()
    differences = differences_to_baseline(references, hypotheses, REAL, seed=seed)
    summary = (
        summarise(runs)
        .join(differences, on=GROUP_KEY, how="left")
        .join(_selected_steps(run_paths), on=GROUP_KEY, how="left")
    )
    if base_path is not None:
        summary = summary.with_columns(base_bleu=pl.lit(read_json(base_path)["bleu"]))
    log.info(
        "%d runs summarised into %d rows; %d of %d conditions differ from %s (both paired tests)",
        len(run_paths),
        summary.height,
        differences["significant"].sum(),
        differences.height,
        REAL,
    )
    write_table(summary, out)
    return summary


def _selected_steps(run_paths: list[str]) -> pl.DataFrame:
    """Per condition and size: how the runs chose their weights, the range of the steps they
    kept, and the share of them that stopped on a plateau of dev scores."""
    rows = []
    for path in run_paths:
        record = read_json(path)
        train = record.get("train", {})
        rows.append(
            {
                **{key: record[key] for key in GROUP_KEY},
                "select": train.get("select", "best"),
                "step": train.get("selected_step", train.get("best_step")),
                "stopped_by": train.get("stopped_by"),
            }
        )
    schema = {"experiment": pl.String, "condition": pl.String, "size": pl.Int64}
    schema |= {"select": pl.String, "step": pl.Int64, "stopped_by": pl.String}
    return (
        pl.DataFrame(rows, schema=schema)
        .group_by(GROUP_KEY)
        .agg(
            pl.col("select").first(),
            pl.col("step").min().alias("selected_step_min"),
            pl.col("step").max().alias("selected_step_max"),
            (pl.col("stopped_by") == "patience").mean().alias("early_stopped"),
        )
    )


def figure_experiment(
    *, summary_path: Path, png: Path, pdf: Path, title: str, reference_metrics: dict[str, str]
) -> None:
    """The learning curves of one experiment's real, self and gen- conditions; `reference_metrics`
    maps a line's label to a metrics JSON whose BLEU it draws."""
    summary = pl.read_csv(summary_path)
    kinds = pl.Series([condition_kind(c) for c in summary["condition"]])
    summary = summary.filter(kinds.is_in(LEARNING_CURVE_KINDS))
    lines = {label: read_json(path)["bleu"] for label, path in reference_metrics.items()}
    learning_curves(summary, png, pdf, title=title, reference_lines=lines)


# Test BLEU below which a generator has not learnt to translate: its "translations" measure
# nothing about generated text, and a ladder of generators needs every rung to translate.
MIN_GENERATOR_BLEU = 1.0


def table_generators(*, metric_paths: list[str], out: Path) -> pl.DataFrame:
    table = generator_table([read_json(path) for path in metric_paths])
    for row in table.filter(pl.col("bleu") < MIN_GENERATOR_BLEU).iter_rows(named=True):
        log.warning(
            "generator %s has test BLEU %.2f: it did not learn to translate; give it more "
            "teacher pairs or training steps (generators.%s)",
            row["generator"],
            row["bleu"],
            row["generator"],
        )
    write_table(table, out)
    return table


def table_html(*, table_path: Path, out: Path) -> None:
    """The report's page of a table: the CSV as written, read as text so nothing is re-rounded."""
    frame = pl.read_csv(table_path, infer_schema=False)
    with atomic_path(out) as tmp:
        tmp.write_text(table_page(frame, str(table_path)), encoding="utf-8")
