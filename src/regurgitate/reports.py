"""One function per reporting job (tables and figures of the analysis), like `pipeline` for
training and generation: the workflow's scripts only pass paths and settings."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import polars as pl

from regurgitate import partial
from regurgitate.aggregate import bleu_losses, load_runs, write_table
from regurgitate.conditions import parse_condition
from regurgitate.figures import learning_curves, plot_real_pairs, save_figure
from regurgitate.io import write_json
from regurgitate.mechanism_figures import loss_figure, mechanisms_figure
from regurgitate.mechanisms import mechanisms_table, source_mechanisms

log = logging.getLogger(__name__)


def read_json(path: str | Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def source_mechanisms_job(
    student_path: Path, synthetic_path: Path | None, name: str, settings: dict, seed: int, out: Path
) -> dict:
    """Error and diversity measures of the human targets (no synthetic file) or a generator's."""
    synthetic = pl.read_parquet(synthetic_path) if synthetic_path else None
    record = source_mechanisms(
        pl.read_parquet(student_path),
        synthetic,
        name,
        chrf_threshold=settings["chrf_threshold"],
        sample_tokens=settings["sample_tokens"],
        bootstrap=settings["bootstrap"],
        seed=seed,
    )
    log.info(
        "%s: error rate %s, MTLD %.1f, TTR %.4f over %d tokens",
        name,
        "n/a" if record["error_rate"] is None else f"{record['error_rate']:.3f}",
        record["diversity"]["mtld"]["value"],
        record["diversity"]["ttr"]["value"],
        settings["sample_tokens"],
    )
    write_json(record, out)
    return record


def mechanisms_table_job(
    record_paths: list[str],
    run_paths: list[str],
    generator_metric_paths: list[str],
    losses: dict[str, dict],
    out: Path,
) -> pl.DataFrame:
    """`losses` maps each experiment to {"size": largest size, "conditions": {generator:
    condition id}}: where the students' BLEU loss per generator is read."""
    runs = load_runs(run_paths)
    loss = pl.concat(
        [
            bleu_losses(runs, experiment, spec["size"], spec["conditions"])
            for experiment, spec in losses.items()
        ]
    )
    generator_bleu = {
        record["generator"]: record["bleu"] for record in map(read_json, generator_metric_paths)
    }
    table = mechanisms_table([read_json(p) for p in record_paths], loss, generator_bleu)
    write_table(table, out, decimals=4)
    return table


def mechanisms_figures_job(
    table_path: Path,
    record_paths: list[str],
    experiments: list[str],
    mechanisms_out: dict,
    loss_out: dict,
) -> None:
    table = pl.read_csv(table_path)
    records = [read_json(path) for path in record_paths]
    sentence_chrf = {r["source"]: r["sentence_chrf"] for r in records if r["sentence_chrf"]}
    threshold = records[0]["chrf_threshold"]
    mechanisms_figure(table, sentence_chrf, threshold, mechanisms_out["png"], mechanisms_out["pdf"])
    loss_figure(table, experiments, loss_out["png"], loss_out["pdf"])


def partial_table_job(summaries: dict[str, str], specs: dict[str, dict], out: Path) -> pl.DataFrame:
    """The fewest human pairs matching each generator's full synthetic set, per experiment.

    `specs` maps each experiment to {"size": largest size, "conditions": {generator: condition}}.
    """
    rows = [
        partial.real_pairs_needed(
            pl.read_csv(summaries[experiment]), experiment, spec["conditions"], spec["size"]
        )
        for experiment, spec in specs.items()
    ]
    table = pl.concat(rows, how="diagonal_relaxed")
    for row in table.iter_rows(named=True):
        log.info(
            "%s %s: %s pairs at BLEU %.2f matched by %s human pairs (%s)",
            row["experiment"],
            row["generator"],
            f"{row['synthetic_pairs']:,}",
            row["synthetic_bleu_mean"],
            row["real_pairs_needed"],
            row["matched_by"],
        )
    write_table(table, out)
    return table


def partial_figure_job(
    summaries: dict[str, str], table_path: Path, titles: dict[str, str], png: Path, pdf: Path
) -> None:
    needed = pl.read_csv(table_path)
    panels = []
    for experiment, summary_path in summaries.items():
        summary = pl.read_csv(summary_path).filter(pl.col("experiment") == experiment)
        panels.append(
            (
                partial.real_pair_points(summary),
                needed.filter(pl.col("experiment") == experiment),
                titles[experiment],
            )
        )
    save_figure(plot_real_pairs(panels), png, pdf)


def learning_curves_job(
    summary_path: Path, png: Path, pdf: Path, title: str, reference_metrics: dict[str, str]
) -> None:
    """The learning curves of one experiment's real, self and gen- conditions (the partial mixes
    and the mitigations have figures of their own); `reference_metrics` maps a line's label to
    a metrics JSON whose BLEU it draws."""
    summary = pl.read_csv(summary_path)
    kinds = [parse_condition(c)["kind"] for c in summary["condition"]]
    summary = summary.filter(pl.Series(kinds).is_in(["real", "self", "gen"]))
    lines = {label: read_json(path)["bleu"] for label, path in reference_metrics.items()}
    learning_curves(summary, png, pdf, title=title, reference_lines=lines)
