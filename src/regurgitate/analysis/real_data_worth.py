"""How much real data is worth: the fewest human pairs that match a full synthetic set.

The paper's claim "a fraction of the real data beats the full synthetic set" becomes a number
per generator: among the runs trained on human targets only (`real` at each size) and the mixes
`partial-<g>-<pct>` (pct % human, the rest g's), the smallest number of human pairs whose mean
BLEU over seeds matches or beats the mean BLEU of training on all of g's pairs.
"""

from __future__ import annotations

import polars as pl

from regurgitate.study.curricula import human_pairs
from regurgitate.study.vocabulary import REAL, parse_condition

BLEU = ["bleu_mean", "bleu_ci_low", "bleu_ci_high"]


def real_pair_points(summary: pl.DataFrame) -> pl.DataFrame:
    """The `real` and partial rows of one experiment's summary with the human pairs in each:
    columns condition, generator (null for real), percent, size, real_pairs, bleu_*."""
    rows = []
    for row in summary.iter_rows(named=True):
        condition = parse_condition(row["condition"])
        if condition["kind"] == REAL:
            generator, percent = None, 100
        elif condition["kind"] == "partial":
            generator, percent = condition["generators"][0], condition["pct"]
        else:
            continue
        rows.append(
            {
                "condition": row["condition"],
                "generator": generator,
                "percent": percent,
                "size": row["size"],
                "real_pairs": human_pairs(row["size"], percent),
                **{column: row[column] for column in BLEU},
            }
        )
    schema = {
        "condition": pl.String,
        "generator": pl.String,
        "percent": pl.Int64,
        "size": pl.Int64,
        "real_pairs": pl.Int64,
        **dict.fromkeys(BLEU, pl.Float64),
    }
    return pl.DataFrame(rows, schema=schema)


def real_pairs_needed(
    summary: pl.DataFrame, experiment: str, full_conditions: dict[str, str], full_size: int
) -> pl.DataFrame:
    """A row per generator: its full synthetic set's BLEU and the fewest human pairs that match it.

    `full_conditions` maps each generator to its condition id (`self` or `gen-<g>`); the full
    set is that condition at `full_size`. `real_pairs_needed` is null where no run matches;
    `clearly_better` says the matching run's interval lies above the synthetic set's.
    """
    summary = summary.filter(pl.col("experiment") == experiment)
    points = real_pair_points(summary)
    rows = []
    for generator, condition in full_conditions.items():
        full = summary.filter((pl.col("condition") == condition) & (pl.col("size") == full_size))
        if full.height != 1:
            raise ValueError(f"{experiment}: no summary row for {condition} at size {full_size}")
        target = full.row(0, named=True)
        candidates = points.filter(
            pl.col("generator").is_null() | (pl.col("generator") == generator)
        )
        matching = candidates.filter(pl.col("bleu_mean") >= target["bleu_mean"]).sort(
            "real_pairs", "bleu_mean", descending=[False, True]
        )
        match = matching.row(0, named=True) if matching.height else dict.fromkeys(points.columns)
        rows.append(
            {
                "experiment": experiment,
                "generator": generator,
                "synthetic_condition": condition,
                "synthetic_pairs": full_size,
                **{f"synthetic_{column}": target[column] for column in BLEU},
                "real_pairs_needed": match["real_pairs"],
                "real_share": None
                if match["real_pairs"] is None
                else match["real_pairs"] / full_size,
                "matched_by": match["condition"],
                "matched_size": match["size"],
                **{f"matched_{column}": match[column] for column in BLEU},
                "clearly_better": _clearly_above(match["bleu_ci_low"], target["bleu_ci_high"]),
            }
        )
    return pl.DataFrame(rows, infer_schema_length=None)


def _clearly_above(low: float | None, high: float | None) -> bool | None:
    if low is None or high is None:
        return None
    return low > high
