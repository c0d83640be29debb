"""Jobs of workflow/rules/report.smk: each experiment's table and learning curves, the
generators' own scores, and every table as a page of the report."""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl

from regurgitate.analysis.aggregate import (
    GROUP_KEY,
    MIN_GENERATOR_BLEU,
    generator_learned,
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
    generator_metric_paths: list[str],
    self_generator: str | None,
    base_path: Path | None = None,
) -> pl.DataFrame:
    """Mean and 95% interval over seeds of every condition and size of one experiment, and each
    condition's BLEU difference to `real` at the same size with the tests of
    analysis.significance (`significant`: the two-level bootstrap over seeds and test
    sentences); `hypothesis_paths[i]` are the test translations of the run whose metrics are
    `run_paths[i]`. The steps whose weights the runs kept (`select`, `selected_step_min/max`),
    the share of runs that early stopping ended (`early_stopped`; the others hit a step or epoch
    cap), whether the generators that wrote a condition's targets learnt to translate
    (`generator_learned`, from their metrics JSON `generator_metric_paths`; `self` is
    `self_generator`'s) and, for E1, the base model's BLEU (`base_path`) stand beside."""
    runs, hypotheses = load_run_translations(run_paths, hypothesis_paths)
    references = pl.read_parquet(test_path)["target"].to_list()
    differences = differences_to_baseline(references, hypotheses, REAL, seed=seed)
    summary = (
        summarise(runs)
        .join(differences, on=GROUP_KEY, how="left")
        .join(_selected_steps(run_paths), on=GROUP_KEY, how="left")
    )
    learned = {
        record["generator"]: record["bleu"] >= MIN_GENERATOR_BLEU
        for record in map(read_json, generator_metric_paths)
    }
    summary = summary.with_columns(
        generator_learned(summary["condition"].to_list(), learned, self_generator)
    )
    if base_path is not None:
        summary = summary.with_columns(base_bleu=pl.lit(read_json(base_path)["bleu"]))
    log.info(
        "%d runs summarised into %d rows; against %s, %d of %d conditions differ (two-level "
        "bootstrap over seeds and sentences), %d untested (one seed)",
        len(run_paths),
        summary.height,
        REAL,
        differences["significant"].sum(),
        differences.height,
        differences["significant"].null_count(),
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


def table_generators(*, metric_paths: list[str], out: Path) -> pl.DataFrame:
    table = generator_table([read_json(path) for path in metric_paths])
    for line in not_learned_lines(table):
        log.warning("%s", line)
    write_table(table, out)
    return table


def not_learned_lines(table: pl.DataFrame) -> list[str]:
    """A line per generator of `table` (generators.csv) that did not learn to translate."""
    return [
        f"generator {row['generator']} has test BLEU {row['bleu']:.2f} (below "
        f"{MIN_GENERATOR_BLEU:g}): it did not learn to translate, so the conditions it wrote "
        f"measure nothing about generated text; give it more teacher pairs or training steps "
        f"(generators.{row['generator']})"
        for row in table.filter(~pl.col("generator_learned")).iter_rows(named=True)
    ]


def end_of_run_message(*, generators_path: Path) -> list[str]:
    """The lines the end-of-run message adds: each generator that did not learn to translate
    (from `generators_path`, results/tables/generators.csv; none where it was not made)."""
    if not Path(generators_path).exists():
        return []
    return not_learned_lines(pl.read_csv(generators_path))


def table_html(*, table_path: Path, out: Path) -> None:
    """The report's page of a table: the CSV as written, read as text so nothing is re-rounded."""
    frame = pl.read_csv(table_path, infer_schema=False)
    with atomic_path(out) as tmp:
        tmp.write_text(table_page(frame, str(table_path)), encoding="utf-8")
