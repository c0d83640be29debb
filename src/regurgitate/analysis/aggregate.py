"""From per-run metric files to the study's tables: mean and 95% interval over seeds.

A run is (experiment, condition, size, seed); its evaluation writes one JSON with the scores and
the sacreBLEU signatures. Tables summarise the seeds of each (experiment, condition, size).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import polars as pl
from scipy.special import stdtrit

from regurgitate.io import read_lines
from regurgitate.study.vocabulary import REAL, SCORES, SELF, parse_condition

# Key -> polars type of every column a run's metrics JSON must provide.
RUN_SCHEMA: dict[str, pl.DataType] = {
    "experiment": pl.String(),
    "condition": pl.String(),
    "size": pl.Int64(),
    "seed": pl.Int64(),
    "bleu": pl.Float64(),
    "chrf": pl.Float64(),
    "bleu_signature": pl.String(),
    "chrf_signature": pl.String(),
}

RUN_KEY = ["experiment", "condition", "size", "seed"]
GROUP_KEY = ["experiment", "condition", "size"]

# Two-sided 95% interval.
CONFIDENCE = 0.95


def _read_run(path: Path) -> dict:
    """One run's metrics JSON, reduced to the RUN_SCHEMA keys, with a clear error if bad."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: cannot read run metrics: {err}") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path}: run metrics must be a JSON object, got {type(data).__name__}")
    for key, dtype in RUN_SCHEMA.items():
        if key not in data:
            raise ValueError(f"{path}: run metrics lack the key {key!r}")
        if not _has_type(data[key], dtype):
            raise ValueError(
                f"{path}: run metrics key {key!r} should be {_TYPE_NAMES[dtype]}, got {data[key]!r}"
            )
    return {key: data[key] for key in RUN_SCHEMA}


_TYPE_NAMES = {pl.String(): "a string", pl.Int64(): "an integer", pl.Float64(): "a number"}


def _has_type(value: object, dtype: pl.DataType) -> bool:
    """Check JSON values here: polars would silently turn size 1.5 into 1, "8000" into 8000."""
    if isinstance(value, bool):  # bool is an int subclass, never a valid size, seed or score
        return False
    if dtype == pl.String():
        return isinstance(value, str)
    if dtype == pl.Int64():
        return isinstance(value, int)
    return isinstance(value, int | float)


def load_runs(paths: list[str | os.PathLike]) -> pl.DataFrame:
    """One row per run, with the RUN_SCHEMA columns, from the runs' metrics JSON files.

    Raises ValueError naming the file (and key) when one is unreadable, lacks a key or has a
    value of the wrong type; and naming the run when two files describe the same run (it would
    be counted twice, as if it were two seeds).
    """
    rows = [_read_run(Path(path)) for path in paths]
    runs = pl.DataFrame(rows, schema=RUN_SCHEMA)
    duplicates = runs.filter(pl.struct(RUN_KEY).is_duplicated())
    if duplicates.height:
        first = duplicates.row(0, named=True)
        run = ", ".join(f"{key}={first[key]}" for key in RUN_KEY)
        raise ValueError(f"more than one metrics file for the run {run}")
    return runs


def load_run_translations(
    metric_paths: list[str | os.PathLike], hypothesis_paths: list[str | os.PathLike]
) -> tuple[pl.DataFrame, dict[tuple, list[str]]]:
    """load_runs, and each run's test translations keyed by (experiment, condition, size,
    seed); `hypothesis_paths[i]` belongs to the run of `metric_paths[i]`."""
    runs = load_runs(metric_paths)
    translations = {
        run: read_lines(path)
        for run, path in zip(runs.select(RUN_KEY).iter_rows(), hypothesis_paths, strict=True)
    }
    return runs, translations


def _t_quantiles(n_seeds: pl.Series) -> pl.Series:
    """Student-t 97.5% quantile with n-1 degrees of freedom; null where n < 2 (no interval)."""
    values = [float(stdtrit(n - 1, 0.5 + CONFIDENCE / 2)) if n >= 2 else None for n in n_seeds]
    return pl.Series("t", values, dtype=pl.Float64)


def _warn_mixed_signatures(runs: pl.DataFrame, column: str) -> None:
    """Scores computed with different sacreBLEU settings should not be averaged silently."""
    mixed = (
        runs.group_by(GROUP_KEY).agg(pl.col(column).n_unique().alias("n")).filter(pl.col("n") > 1)
    )
    if mixed.height:
        first = mixed.row(0, named=True)
        group = ", ".join(f"{key}={first[key]}" for key in GROUP_KEY)
        warnings.warn(
            f"runs of {group} have different {column} values; the table keeps the first",
            stacklevel=3,
        )


def summarise(runs: pl.DataFrame, metrics: tuple[str, ...] = tuple(SCORES)) -> pl.DataFrame:
    """Mean, sd and 95% t-interval over seeds of each (experiment, condition, size).

    Columns: experiment, condition, size, n_seeds, then per metric m `m_mean`, `m_sd`,
    `m_ci_low`, `m_ci_high`, then `m_signature` for each metric whose signature the runs carry.
    The interval is mean +/- t(0.975, n-1) * sd / sqrt(n).

    With a single seed there is no spread to estimate: sd, ci_low and ci_high are null (not
    NaN, and no error), so tables and figures show the mean alone.
    Rows are sorted by experiment, condition, then size.
    """
    missing = [column for column in [*GROUP_KEY, *metrics] if column not in runs.columns]
    if missing:
        raise ValueError(f"runs lack the columns {missing}")
    signatures = [f"{m}_signature" for m in metrics if f"{m}_signature" in runs.columns]
    for column in signatures:
        _warn_mixed_signatures(runs, column)

    summary = runs.group_by(GROUP_KEY).agg(
        pl.len().alias("n_seeds"),
        *[pl.col(m).mean().alias(f"{m}_mean") for m in metrics],
        # ddof=1 (sample sd) is what the t-interval needs; polars gives null for one value.
        *[pl.col(m).std(ddof=1).alias(f"{m}_sd") for m in metrics],
        *[pl.col(column).first() for column in signatures],
    )
    summary = summary.with_columns(_t_quantiles(summary["n_seeds"]))
    half_widths = {m: pl.col("t") * pl.col(f"{m}_sd") / pl.col("n_seeds").sqrt() for m in metrics}
    summary = summary.with_columns(
        *[(pl.col(f"{m}_mean") - half_widths[m]).alias(f"{m}_ci_low") for m in metrics],
        *[(pl.col(f"{m}_mean") + half_widths[m]).alias(f"{m}_ci_high") for m in metrics],
    )
    per_metric = [f"{m}_{stat}" for m in metrics for stat in ("mean", "sd", "ci_low", "ci_high")]
    return summary.select(*GROUP_KEY, "n_seeds", *per_metric, *signatures).sort(GROUP_KEY)


# Test BLEU below which a generator has not learnt to translate: its "translations" measure
# nothing about generated text, and a ladder of generators needs every rung to translate.
MIN_GENERATOR_BLEU = 1.0


def generator_table(records: list[dict]) -> pl.DataFrame:
    """Each generator's own test BLEU and chrF (from its metrics JSON records): how good the
    writer of the synthetic data is, and `generator_learned`: whether its BLEU reaches
    MIN_GENERATOR_BLEU."""
    rows = []
    for record in records:
        train = record.get("train", {})
        rows.append(
            {
                "generator": record["generator"],
                "architecture": record["architecture"],
                "teacher_pairs": train.get("pairs"),
                "parameters": train.get("parameters"),
                "bleu": record["bleu"],
                "chrf": record["chrf"],
                "bleu_signature": record["bleu_signature"],
                "generator_learned": record["bleu"] >= MIN_GENERATOR_BLEU,
            }
        )
    return pl.DataFrame(rows).sort("bleu")


def generator_learned(
    conditions: list[str], learned: dict[str, bool], self_generator: str | None = None
) -> pl.Series:
    """Per condition, whether every generator that wrote its targets learnt to translate (see
    generator_table): null where humans wrote them (`real`, `sources-` controls) or the
    generator is not in `learned`. `self` is the targets of `self_generator` (E1's base)."""
    values = []
    for condition in conditions:
        parts = parse_condition(condition)
        if parts["kind"] == SELF:
            writers = [self_generator]
        elif parts["kind"] in (REAL, "sources"):
            writers = []
        else:
            writers = parts["generators"]
        values.append(writers_learned(writers, learned))
    return pl.Series("generator_learned", values, dtype=pl.Boolean)


def writers_learned(writers: list[str | None], learned: dict[str, bool]) -> bool | None:
    """Whether every one of `writers` learnt to translate; null where there are none (humans
    wrote the targets) or `learned` does not hold one of them."""
    known = [learned.get(writer) for writer in writers]
    return all(known) if known and None not in known else None


def with_generator_learned(table: pl.DataFrame, generators_csv: str | Path) -> pl.DataFrame:
    """`table` with `generator_learned`: whether the generators named in its `generator` column
    (a mix's names joined by "+") all learnt to translate, from the study's generator table
    (generators.csv); null for a name it does not hold."""
    learned = dict(pl.read_csv(generators_csv).select("generator", "generator_learned").iter_rows())
    values = [writers_learned(name.split("+"), learned) for name in table["generator"]]
    return table.with_columns(pl.Series("generator_learned", values, dtype=pl.Boolean))


def t_interval(values: list[float]) -> dict:
    """Mean and 95% t-interval of `values` (null interval for a single value)."""
    n = len(values)
    if n == 0:
        raise ValueError("no values to summarise")
    series = pl.Series(values, dtype=pl.Float64)
    mean = float(series.mean())
    if n < 2:
        return {"mean": mean, "ci_low": None, "ci_high": None, "n": n}
    half = float(stdtrit(n - 1, 0.5 + CONFIDENCE / 2)) * float(series.std(ddof=1)) / n**0.5
    return {"mean": mean, "ci_low": mean - half, "ci_high": mean + half, "n": n}


def paired_difference(
    runs: pl.DataFrame, experiment: str, size: int, minuend: str, subtrahend: str
) -> dict:
    """BLEU of `minuend` minus BLEU of `subtrahend` at one size, paired by seed, with a t-interval
    over seeds. Runs of one seed share their initialisation and, with `curriculum_seed: run`,
    their sources; not their batches, which are bucketed by the targets' lengths."""
    at_size = runs.filter((pl.col("experiment") == experiment) & (pl.col("size") == size))

    def scores(condition: str) -> pl.DataFrame:
        rows = at_size.filter(pl.col("condition") == condition).select("seed", "bleu")
        if rows.height == 0:
            raise ValueError(f"no {experiment} runs of {condition} at size {size}")
        return rows

    paired = scores(minuend).join(scores(subtrahend), on="seed", suffix="_other")
    if paired.height == 0:
        raise ValueError(f"{minuend} and {subtrahend} share no seed at size {size}")
    return t_interval((paired["bleu"] - paired["bleu_other"]).to_list())


def bleu_losses(
    runs: pl.DataFrame, experiment: str, size: int, conditions: dict[str, str]
) -> pl.DataFrame:
    """Per generator, BLEU of `real` minus BLEU of the generator's condition at `size`.

    `conditions` maps each generator to its condition id in the experiment (`self` or
    `gen-<g>`). Columns: generator, experiment, size, loss_mean, loss_ci_low, loss_ci_high,
    n_seeds.
    """
    rows = []
    for generator, condition in conditions.items():
        loss = paired_difference(runs, experiment, size, "real", condition)
        rows.append(
            {
                "generator": generator,
                "experiment": experiment,
                "size": size,
                "loss_mean": loss["mean"],
                "loss_ci_low": loss["ci_low"],
                "loss_ci_high": loss["ci_high"],
                "n_seeds": loss["n"],
            }
        )
    return pl.DataFrame(
        rows, schema_overrides={"loss_ci_low": pl.Float64, "loss_ci_high": pl.Float64}
    )
