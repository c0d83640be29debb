"""Jobs of workflow/rules/mitigate.smk: the reversed pairs and the quality scores of S1
(quality-ordered), and the mitigations' tables. The jobs that run a model for S1 are in
jobs.quality_models, the detector's (S3) in jobs.detector and the figures in jobs.figures, so that
these jobs do not import torch, scikit-learn or matplotlib; the curricula themselves, S2's mixes
and the sources- controls are built by jobs.curricula."""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl

from regurgitate.analysis.aggregate import load_runs, with_generator_learned
from regurgitate.analysis.diversity import profile_values
from regurgitate.analysis.mitigations import mitigations_table
from regurgitate.analysis.quality import correlation_table, quality_table, reverse_direction
from regurgitate.io import read_json, write_parquet, write_table

log = logging.getLogger(__name__)

# --- S1: what the quality metrics need, and the scores ----------------------------------------


def reverse_pairs(*, pairs_path: Path, out: Path) -> None:
    """The pairs English to German: what the reverse model trains on or back-translates."""
    pairs = pl.read_parquet(pairs_path)
    write_parquet(reverse_direction(pairs.select("id", "source", "target")), out)


def quality_scores(
    *,
    student_path: Path,
    synthetic_path: Path,
    generator: str,
    metrics: list[str],
    inputs: dict[str, Path | list[Path]],
    scores_out: Path,
    correlation_out: Path,
) -> pl.DataFrame:
    """Every quality metric of one generator's student-pool pairs, and each reference-free
    metric's rank correlation with the oracle. `inputs` holds what the metrics need: `others`
    (other generators' synthetic data), `back_translations`, `forward_nll`, `reverse_nll`."""
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
    if "oracle" in metrics:
        correlations = correlation_table(scores, generator)
        for row in correlations.iter_rows(named=True):
            log.info(
                "%s %s: Spearman rho with the oracle %.3f", generator, row["metric"], row["rho"]
            )
        write_table(correlations, correlation_out, decimals=4)
    else:
        write_table(pl.DataFrame({"generator": [], "metric": []}), correlation_out)
    return scores


# --- tables and figures -----------------------------------------------------------------------


def table_quality(*, correlation_paths: list[str], out: Path) -> pl.DataFrame:
    """Each generator's quality metrics' correlations with the oracle, in one table."""
    table = pl.concat([pl.read_csv(p) for p in correlation_paths], how="diagonal_relaxed")
    write_table(table, out, decimals=4)
    return table


def table_detector(*, metric_paths: list[str], out: Path) -> pl.DataFrame:
    table = pl.DataFrame([read_json(p) for p in metric_paths], infer_schema_length=None)
    write_table(table, out, decimals=4)
    return table


def table_mitigations(
    *,
    run_paths: list[str],
    unmitigated: dict[str, dict[str, str]],
    mix_mechanisms: dict[str, str],
    min_gap: float,
    out: Path,
    generators_table: Path,
    experiment_tables: list[str] | None = None,
) -> pl.DataFrame:
    """BLEU and the share of the gap closed of every mitigated condition, per baseline,
    experiment and size, with each mix's lexical diversity beside it (S2), and whether the
    generators it mitigates learnt to translate (`generator_learned`, from `generators_table`:
    ordering or mixing the output of one that did not has no gap to close).

    `unmitigated` maps each experiment to {generator: its unmitigated condition id};
    `mix_mechanisms` each mixed condition to its mechanisms JSON; `experiment_tables` are the
    experiments' tables, whose tests against real (`significant`) gate the share."""
    runs = load_runs(run_paths)
    significant = None
    if experiment_tables:
        columns = ["experiment", "condition", "size", "significant"]
        significant = pl.concat([pl.read_csv(p, columns=columns) for p in experiment_tables])
    table = pl.concat(
        [
            mitigations_table(
                runs.filter(pl.col("experiment") == experiment),
                min_gap=min_gap,
                conditions=unmitigated.get(experiment),
                significant=significant,
            )
            for experiment in sorted(set(runs["experiment"]))
        ],
        how="vertical_relaxed",
    ).sort(["strategy", "generator", "condition", "baseline", "experiment", "size"])
    diversity = pl.DataFrame(
        [
            {"condition": condition} | _mix_diversity(read_json(path)["diversity"])
            for condition, path in mix_mechanisms.items()
        ],
        schema={c: pl.String if c == "condition" else pl.Float64 for c in
                ("condition", "ttr", "mtld", "mtld_ci_low", "mtld_ci_high")},
    )  # fmt: skip
    table = table.join(diversity, on="condition", how="left")
    table = with_generator_learned(table, generators_table)
    write_table(table, out)
    return table


def _mix_diversity(profile: dict | None) -> dict:
    """A mix's TTR and MTLD with its interval, null where it has no diversity values."""
    ttr, mtld = profile_values(profile, "ttr"), profile_values(profile, "mtld")
    return {
        "ttr": ttr["value"],
        "mtld": mtld["value"],
        "mtld_ci_low": mtld["ci_low"],
        "mtld_ci_high": mtld["ci_high"],
    }
