"""How much real data is worth: how many human pairs match a full synthetic set.

The paper's claim "a fraction of the real data beats the full synthetic set" becomes a number
per generator: the point where the `real` learning curve (mean BLEU over seeds against training
pairs, linear between the trained sizes) first reaches the BLEU of training on all of the
generator's pairs. It is a measured crossing, not the smallest size of the grid: where even the
smallest `real` size beats the synthetic set it is "below the smallest size", and where no size
reaches it "beyond the largest size". Its 95% interval is a bootstrap over test sentences and
seeds: each replicate resamples the test sentences (the same ones for every run, as the paired
tests do) and the seeds (the same draw for every condition, which share their sources per
seed), and finds the crossing again.

The partial mixes `partial-<g>-<pct>` (pct % human targets, the rest g's) are rows of their own:
their human share and their BLEU against the full synthetic set at the same size, with the
tests of analysis.significance (`significant`: the two-level bootstrap over seeds and test
sentences).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from regurgitate.analysis.significance import (
    ALPHA,
    DIFFERENCE_COLUMNS,
    DIFFERENCE_SCHEMA,
    RESAMPLES,
    compare_translations,
    corpus_bleu,
    sentence_stats,
)
from regurgitate.study.curricula import human_pairs
from regurgitate.study.vocabulary import REAL, parse_condition

BELOW = "below the smallest size"
BEYOND = "beyond the largest size"
INTERPOLATED = "interpolated"


def crossing(sizes: np.ndarray, curve: np.ndarray, target: float) -> tuple[float, str]:
    """The smallest number of pairs at which the piecewise-linear curve through (sizes, curve)
    reaches `target`: (pairs, INTERPOLATED); (-inf, BELOW) where the curve starts at or above
    it, (inf, BEYOND) where it never reaches it."""
    order = np.argsort(sizes)
    sizes, curve = np.asarray(sizes, float)[order], np.asarray(curve, float)[order]
    if curve[0] >= target:
        return -np.inf, BELOW
    for i in range(1, len(sizes)):
        if curve[i] >= target:
            share = (target - curve[i - 1]) / (curve[i] - curve[i - 1])
            return float(sizes[i - 1] + share * (sizes[i] - sizes[i - 1])), INTERPOLATED
    return np.inf, BEYOND


def real_pairs_worth(
    references: list[str],
    real: dict[int, dict[int, list[str]]],
    synthetic: dict[int, list[str]],
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> dict:
    """The crossing of the `real` curve with the synthetic set's BLEU, and its bootstrap
    interval. `real` maps size -> seed -> test translations; `synthetic` seed -> translations.
    Only seeds that every run has are used. The interval's bounds are None where they fall
    outside the trained sizes (`low_note`/`high_note` say which way)."""
    seeds = sorted(set(synthetic).intersection(*(set(runs) for runs in real.values())))
    if not seeds:
        raise ValueError("the real runs and the synthetic set share no seed")
    sizes = np.array(sorted(real))
    n = len(references)
    stats = {(size, s): sentence_stats(references, real[size][s]) for size in sizes for s in seeds}
    stats |= {("synthetic", s): sentence_stats(references, synthetic[s]) for s in seeds}
    everything = np.ones((1, n))
    bleu = {key: corpus_bleu(everything @ value)[0] for key, value in stats.items()}
    curve = np.array([np.mean([bleu[(size, s)] for s in seeds]) for size in sizes])
    target = float(np.mean([bleu[("synthetic", s)] for s in seeds]))
    estimate, note = crossing(sizes, curve, target)

    rng = np.random.default_rng(seed)
    sentences = rng.choice(n, size=(resamples, n), replace=True)
    weights = np.stack([np.bincount(row, minlength=n) for row in sentences]).astype(np.float64)
    drawn = rng.choice(len(seeds), size=(resamples, len(seeds)), replace=True)
    replicated = {key: corpus_bleu(weights @ value) for key, value in stats.items()}
    crossings = []
    for b in range(resamples):
        picked = [seeds[i] for i in drawn[b]]
        curve_b = [np.mean([replicated[(size, s)][b] for s in picked]) for size in sizes]
        target_b = np.mean([replicated[("synthetic", s)][b] for s in picked])
        crossings.append(crossing(sizes, np.array(curve_b), target_b)[0])
    low, high = np.quantile(np.array(crossings), [ALPHA / 2, 1 - ALPHA / 2], method="lower")
    return {
        "real_pairs_worth": float(estimate) if note == INTERPOLATED else None,
        "worth_note": note,
        "real_pairs_worth_low": float(low) if np.isfinite(low) else None,
        "real_pairs_worth_high": float(high) if np.isfinite(high) else None,
        "low_note": BELOW if low == -np.inf else (BEYOND if low == np.inf else None),
        "high_note": BELOW if high == -np.inf else (BEYOND if high == np.inf else None),
        "synthetic_bleu": target,
        "paired_seeds": len(seeds),
        "smallest_size": int(sizes[0]),
        "largest_size": int(sizes[-1]),
    }


def partial_rows(
    references: list[str],
    partial: dict[tuple[str, int], dict[int, list[str]]],
    synthetic: dict[int, dict[int, list[str]]],
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> list[dict]:
    """Each partial mix against the full synthetic set at the same size: its human share and
    pairs, and significance.DIFFERENCE_COLUMNS. `partial` maps (condition, size) -> seed ->
    translations; `synthetic` maps size -> seed -> translations of the full synthetic set."""
    rows = []
    for (condition, size), runs in sorted(partial.items()):
        if size not in synthetic:
            continue  # the full synthetic set was not trained at this size
        seeds = sorted(set(runs) & set(synthetic[size]))
        pair = ([synthetic[size][s] for s in seeds], [runs[s] for s in seeds])
        percent = parse_condition(condition)["pct"]
        rows.append(
            {
                "condition": condition,
                "size": size,
                "human_share": percent / 100,
                "human_pairs": human_pairs(size, percent),
                **compare_translations(references, *pair, resamples=resamples, seed=seed),
            }
        )
    return rows


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


BLEU = ["bleu_mean", "bleu_ci_low", "bleu_ci_high"]

WORTH_COLUMNS = [
    "real_pairs_worth",
    "real_pairs_worth_low",
    "real_pairs_worth_high",
    "worth_note",
    "low_note",
    "high_note",
]

# results/tables/partial.csv: per experiment and generator, a row comparing its full synthetic
# set with the `real` curve (compared = real: the crossing), and a row per partial mix
# (compared = its condition: significance.DIFFERENCE_COLUMNS against the full set at the mix's
# size).
PARTIAL_SCHEMA = {
    "experiment": pl.String,
    "generator": pl.String,
    "synthetic_condition": pl.String,
    "synthetic_pairs": pl.Int64,
    **{f"synthetic_{c}": pl.Float64 for c in BLEU},
    "compared": pl.String,
    **{c: pl.Float64 for c in WORTH_COLUMNS[:3]},
    **{c: pl.String for c in WORTH_COLUMNS[3:]},
    "size": pl.Int64,
    "human_share": pl.Float64,
    "human_pairs": pl.Int64,
    **dict.fromkeys(BLEU, pl.Float64),
    **{column: DIFFERENCE_SCHEMA[column] for column in DIFFERENCE_COLUMNS},
}
