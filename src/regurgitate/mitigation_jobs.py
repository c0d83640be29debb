"""One function per job of the mitigations (S1, S2, S3), like `pipeline` and `reports`: the
workflow's scripts only pass paths and settings."""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl

from regurgitate.aggregate import load_runs, summarise, write_table
from regurgitate.io import write_parquet
from regurgitate.mitigation_figures import gap_closed_figure, strategy_curves
from regurgitate.mitigations import mitigations_job
from regurgitate.quality import correlation_table, quality_table
from regurgitate.reports import read_json
from regurgitate.scoring import reverse_direction

log = logging.getLogger(__name__)


def reverse_pairs_job(pairs_path: Path, out: Path) -> None:
    """The pairs English to German: what the reverse model trains on or back-translates."""
    pairs = pl.read_parquet(pairs_path)
    write_parquet(reverse_direction(pairs.select("id", "source", "target")), out)


def quality_job(
    student_path: Path,
    synthetic_path: Path,
    generator: str,
    metrics: list[str],
    inputs: dict[str, Path | list[Path]],
    scores_out: Path,
    correlation_out: Path,
) -> pl.DataFrame:
    """Every quality metric of one generator's student-pool pairs, and each reference-free
    metric's rank correlation with the oracle."""
    others = {Path(p).stem: pl.read_parquet(p) for p in inputs.get("others", [])}
    frames = {
        name: pl.read_parquet(inputs[name]) if name in inputs else None
        for name in ("back_translations", "forward_nll", "reverse_nll")
    }
    scores = quality_table(
        pl.read_parquet(student_path),
        pl.read_parquet(synthetic_path),
        generator,
        metrics,
        others=others or None,
        **frames,
    )
    write_parquet(scores, scores_out)
    correlations = correlation_table(scores, generator) if "oracle" in metrics else None
    if correlations is not None:
        for row in correlations.iter_rows(named=True):
            log.info(
                "%s %s: Spearman rho with the oracle %.3f", generator, row["metric"], row["rho"]
            )
        write_table(correlations, correlation_out, decimals=4)
    else:
        write_table(pl.DataFrame({"generator": [], "metric": []}), correlation_out)
    return scores


def concat_tables_job(paths: list[str], out: Path) -> pl.DataFrame:
    """Stack CSV tables of one shape (e.g. the quality metrics' correlations per generator)."""
    table = pl.concat([pl.read_csv(p) for p in paths], how="diagonal_relaxed")
    write_table(table, out, decimals=4)
    return table


def detector_table_job(paths: list[str], out: Path) -> pl.DataFrame:
    table = pl.DataFrame([read_json(p) for p in paths], infer_schema_length=None)
    write_table(table, out, decimals=4)
    return table


def mitigations_table_job(
    run_paths: list[str],
    unmitigated: dict[str, dict[str, str]],
    mix_mechanisms: dict[str, str],
    min_gap: float,
    out: Path,
) -> pl.DataFrame:
    """The mitigations table, with each mix's lexical diversity beside its BLEU (S2)."""
    table = mitigations_job(run_paths, out, min_gap=min_gap, conditions=unmitigated)
    diversity = pl.DataFrame(
        [
            {
                "condition": condition,
                "ttr": record["diversity"]["ttr"]["value"],
                "mtld": record["diversity"]["mtld"]["value"],
                "mtld_ci_low": record["diversity"]["mtld"]["ci_low"],
                "mtld_ci_high": record["diversity"]["mtld"]["ci_high"],
            }
            for condition, record in ((c, read_json(p)) for c, p in mix_mechanisms.items())
        ],
        schema={c: pl.String if c == "condition" else pl.Float64 for c in
                ("condition", "ttr", "mtld", "mtld_ci_low", "mtld_ci_high")},
    )  # fmt: skip
    table = table.join(diversity, on="condition", how="left")
    write_table(table, out)
    return table


def mitigation_figures_job(
    run_paths: list[str],
    table_path: Path,
    unmitigated: dict[str, dict[str, str]],
    curves: dict[str, dict[str, dict[str, str]]],
    gap: dict[str, str],
) -> None:
    """Learning curves of real, unmitigated and mitigated data per experiment and strategy
    (`curves`: experiment -> strategy -> {"png", "pdf"}), and the gap closed by every
    strategy (`gap`: {"png", "pdf"})."""
    summary = summarise(load_runs(run_paths))
    for experiment, strategies in curves.items():
        rows = summary.filter(pl.col("experiment") == experiment)
        for strategy, paths in strategies.items():
            strategy_curves(
                rows, strategy, paths["png"], paths["pdf"], unmitigated=unmitigated[experiment]
            )
    gap_closed_figure(pl.read_csv(table_path), gap["png"], gap["pdf"])
