"""How much of the gap to real data each mitigation closes (S1, S2, S3 of the study).

share of the gap closed = (BLEU_mitigated - BLEU_unmitigated) / (BLEU_real - BLEU_unmitigated):
0 is no better than the unmitigated synthetic data, 1 is as good as the human translations.

It is estimated per (experiment, size) from runs paired by seed: only seeds that all the
conditions involved have are used (the others are left out, with a warning), so seed-level
effects shared by the conditions (curriculum order, initialisation) cancel. The estimate is the
ratio of the mean paired differences, mean(m - u) / mean(r - u), which is the formula above on
the means of the common seeds; it stays finite where one seed's own gap is near zero, where a
mean of per-seed ratios would blow up. Its 95% interval is Fieller's (1954) interval for a
ratio of means, with d_m = m - u and d_r = r - u paired by seed: the set of R for which
mean(d_m) - R mean(d_r) is not significantly different from 0 at the t(0.975, n-1) level. Unlike
the delta method it is not symmetric, and it is unbounded (reported as null) when the gap's own
interval reaches 0. One common seed gives the estimate without an interval.

The share is reported only where there is a gap to close: where real data beats the
unmitigated data by at least `min_gap` BLEU and, when the experiment tables' `significant` is
given (the two-level bootstrap over seeds and test sentences, analysis.significance), the gap
is significant there (for a mix, every one of its generators' conditions differs from real).
Elsewhere it is empty (null) and `gap_note` says why, rather than a large or negative number;
the table keeps the gap itself. Where the experiment has one seed the gap is untested
(`gap_significant` null, the note ONE_SEED_NOTE).

A mix (S2) is measured twice: against the mean of its generators' conditions (what equal shares
would give if mixing did nothing beyond averaging) and against the best of them at that size
(whether mixing beats simply using the best generator); the `baseline` column says which.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.special import stdtrit

from regurgitate.analysis.aggregate import CONFIDENCE, paired_difference, summarise
from regurgitate.analysis.significance import ONE_SEED_NOTE
from regurgitate.study.vocabulary import (
    ORACLE,
    REAL,
    STRATEGY_OF_KIND,
    gen_condition,
    parse_condition,
    sources_condition,
)

# BLEU below which a gap between real and unmitigated data is treated as none.
MIN_GAP = 0.5

GAP_COLUMNS = {
    "experiment": pl.String,
    "size": pl.Int64,
    "gap_seeds": pl.Int64,
    "real_bleu": pl.Float64,
    "unmitigated_bleu": pl.Float64,
    "gap": pl.Float64,
    "gap_closed_mean": pl.Float64,
    "gap_closed_ci_low": pl.Float64,
    "gap_closed_ci_high": pl.Float64,
}


@dataclass(frozen=True)
class Mitigation:
    strategy: str  # S1, S2 or S3
    generator: str  # the generator, or the generators of a mix joined by "+"
    condition: str
    unmitigated: tuple[str, ...]  # conditions whose per-seed mean BLEU is the baseline


def mitigation_of(condition: str, conditions: dict[str, str] | None = None) -> Mitigation | None:
    """The mitigation a condition id stands for, or None for other conditions.

    `conditions` maps a generator to the condition id of its unmitigated data where that is not
    gen-<g>: the experiment's `self` generator (see config.full_set_conditions).

    ordered-<g>-<m> and detector-<g> are measured against gen-<g>, the same targets in random
    order. A mix is measured against the mean of its generators' gen-<g> conditions: what equal
    shares would give if mixing did nothing beyond averaging.
    """
    parts = parse_condition(condition)
    if parts["kind"] not in STRATEGY_OF_KIND:
        return None
    return Mitigation(
        strategy=STRATEGY_OF_KIND[parts["kind"]],
        generator="+".join(parts["generators"]),
        condition=condition,
        unmitigated=tuple((conditions or {}).get(g, gen_condition(g)) for g in parts["generators"]),
    )


def _per_seed(runs: pl.DataFrame, conditions: Sequence[str], name: str) -> pl.DataFrame:
    """(experiment, size, seed, <name>): mean BLEU of `conditions` at each seed all of them ran."""
    key = ["experiment", "size", "seed"]
    return (
        runs.filter(pl.col("condition").is_in(list(conditions)))
        .group_by(key)
        .agg(pl.col("bleu").mean().alias(name), pl.col("condition").n_unique().alias("n"))
        .filter(pl.col("n") == len(set(conditions)))
        .drop("n")
    )


def _require_conditions(runs: pl.DataFrame, conditions: Sequence[str]) -> None:
    present = set(runs["condition"])
    missing = [c for c in conditions if c not in present]
    if missing:
        raise ValueError(f"no runs of the conditions {missing}")


def _ratio_interval(d_m: np.ndarray, d_r: np.ndarray, min_gap: float) -> tuple:
    """(estimate, low, high) of mean(d_m) / mean(d_r) with Fieller's interval; None where
    undefined (see module doc)."""
    n, gap = d_r.size, float(d_r.mean())
    if gap < min_gap:
        return None, None, None
    closed = float(d_m.mean())
    ratio = closed / gap
    if n < 2:
        return ratio, None, None
    t2 = stdtrit(n - 1, 0.5 + CONFIDENCE / 2) ** 2
    covariance = np.cov(d_m, d_r, ddof=1) / n
    # (closed - R gap)^2 <= t2 * var(closed - R gap), a quadratic a R^2 - 2 b R + c <= 0.
    a = gap**2 - t2 * covariance[1, 1]
    b = closed * gap - t2 * covariance[0, 1]
    c = closed**2 - t2 * covariance[0, 0]
    if a <= 0:  # the gap's own interval holds 0: the ratio's interval is unbounded
        return ratio, None, None
    root = math.sqrt(max(b * b - a * c, 0.0))
    return ratio, (b - root) / a, (b + root) / a


def gap_closed(
    runs: pl.DataFrame,
    real: str,
    unmitigated: str | Sequence[str],
    mitigated: str,
    *,
    min_gap: float = MIN_GAP,
) -> pl.DataFrame:
    """Share of the gap closed by `mitigated` per (experiment, size), from per-run rows
    (experiment, condition, size, seed, bleu; see aggregate.load_runs).

    `unmitigated` is a condition, or several whose per-seed mean is the baseline (mixes).
    Columns: experiment, size, gap_seeds (seeds common to all conditions), real_bleu and
    unmitigated_bleu (means over those seeds), gap (their difference), gap_closed_mean,
    gap_closed_ci_low, gap_closed_ci_high. Pairing, the interval and the empty share below
    `min_gap` are described in the module docstring. Sizes where the mitigated condition ran
    but no seed is common to all conditions get a row with gap_seeds 0 and nulls.
    """
    baseline = [unmitigated] if isinstance(unmitigated, str) else list(unmitigated)
    _require_conditions(runs, [real, *baseline, mitigated])
    key = ["experiment", "size", "seed"]
    paired = (
        _per_seed(runs, [real], "r")
        .join(_per_seed(runs, baseline, "u"), on=key)
        .join(_per_seed(runs, [mitigated], "m"), on=key)
    )
    involved = runs.filter(pl.col("condition").is_in([real, *baseline, mitigated]))
    unpaired = involved.join(paired, on=key, how="anti")
    if unpaired.height:
        first = unpaired.row(0, named=True)
        warnings.warn(
            f"{unpaired.height} runs of {[real, *baseline, mitigated]} have no partner at the "
            f"same seed and are left out of the gap closed (first: {first['condition']}, "
            f"size {first['size']}, seed {first['seed']})",
            stacklevel=2,
        )
    rows = []
    sizes = runs.filter(pl.col("condition") == mitigated).select("experiment", "size").unique()
    for experiment, size in sizes.sort(["experiment", "size"]).iter_rows():
        group = paired.filter((pl.col("experiment") == experiment) & (pl.col("size") == size))
        r, u, m = (group[c].to_numpy() for c in ("r", "u", "m"))
        row = {"experiment": experiment, "size": size, "gap_seeds": group.height}
        if group.height:
            estimate = _ratio_interval(m - u, r - u, min_gap)
            row.update(real_bleu=float(r.mean()), unmitigated_bleu=float(u.mean()))
            row.update(gap=float((r - u).mean()))
            row.update(
                zip(
                    ["gap_closed_mean", "gap_closed_ci_low", "gap_closed_ci_high"],
                    estimate,
                    strict=True,
                )
            )
        rows.append(row)
    return pl.DataFrame(rows, schema=GAP_COLUMNS)


TABLE_COLUMNS = [
    "strategy",
    "generator",
    "condition",
    "baseline",
    "experiment",
    "size",
    "n_seeds",
    "bleu_mean",
    "bleu_ci_low",
    "bleu_ci_high",
    *list(GAP_COLUMNS)[2:],
    "gap_significant",
    "gap_note",
    "selection_effect_mean",
    "selection_effect_ci_low",
    "selection_effect_ci_high",
    "deployable",
]

NO_SIGNIFICANT_GAP = "no significant gap"
GAP_BELOW_MINIMUM = "gap below min_gap"
SHARE_COLUMNS = ["gap_closed_mean", "gap_closed_ci_low", "gap_closed_ci_high"]


def _best_component(runs: pl.DataFrame, components: Sequence[str], size: int) -> str:
    """The component condition with the highest mean BLEU at `size`."""
    at_size = runs.filter(pl.col("condition").is_in(list(components)) & (pl.col("size") == size))
    means = at_size.group_by("condition").agg(pl.col("bleu").mean()).sort(["bleu", "condition"])
    return means["condition"][-1]


def _baselines(
    runs: pl.DataFrame, mitigation: Mitigation
) -> list[tuple[str, tuple[pl.DataFrame, list[str]]]]:
    """(label, (runs, baseline conditions)) for each baseline a mitigation is measured against:
    its unmitigated condition, or for a mix the mean of its generators' and, per size, the
    best of them."""
    if len(mitigation.unmitigated) == 1:
        (baseline,) = mitigation.unmitigated
        return [(baseline, (runs, [baseline]))]
    mean_label = f"mean({', '.join(mitigation.unmitigated)})"
    out = [(mean_label, (runs, list(mitigation.unmitigated)))]
    sizes = runs.filter(pl.col("condition") == mitigation.condition)["size"].unique().sort()
    for size in sizes:
        best = _best_component(runs, mitigation.unmitigated, size)
        at_size = runs.filter(pl.col("size") == size)
        out.append((f"best: {best}", (at_size, [best])))
    return out


SELECTION_COLUMNS = {
    "experiment": pl.String,
    "size": pl.Int64,
    "selection_effect_mean": pl.Float64,
    "selection_effect_ci_low": pl.Float64,
    "selection_effect_ci_high": pl.Float64,
}


def _selection_effect(runs: pl.DataFrame, condition: str, real: str) -> pl.DataFrame:
    """BLEU of the `sources-<condition>` control minus `real`, paired by seed, per experiment
    and size: what choosing these sources does on its own, with human targets."""
    control = sources_condition(condition)
    rows = []
    at = runs.filter(pl.col("condition") == control).select("experiment", "size").unique()
    for experiment, size in at.sort(["experiment", "size"]).iter_rows():
        effect = paired_difference(runs, experiment, size, control, real)
        rows.append(
            {
                "experiment": experiment,
                "size": size,
                "selection_effect_mean": effect["mean"],
                "selection_effect_ci_low": effect["ci_low"],
                "selection_effect_ci_high": effect["ci_high"],
            }
        )
    return pl.DataFrame(rows, schema=SELECTION_COLUMNS)


def _gate_on_significance(
    rows: pl.DataFrame, baseline: Sequence[str], significant: pl.DataFrame | None
) -> pl.DataFrame:
    """Blank the share where the gap is below min_gap or, given the experiment tables'
    `significant`, not significant (every baseline condition must differ from real) or untested
    (a baseline condition has one seed, and none is known not to differ)."""
    note = pl.when(pl.col("gap_seeds") > 0).then(
        pl.when(pl.col("gap_closed_mean").is_null()).then(pl.lit(GAP_BELOW_MINIMUM))
    )
    if significant is None:
        return rows.with_columns(gap_significant=pl.lit(None, pl.Boolean), gap_note=note)
    tested = (
        # A one-seed table's column is all empty: read from CSV, it has no type to infer.
        significant.with_columns(pl.col("significant").cast(pl.Boolean))
        .filter(pl.col("condition").is_in(list(baseline)))
        .group_by("experiment", "size")
        .agg(
            # Kleene logic: false if any is false, else null if any is untested, else true.
            pl.col("significant").all(ignore_nulls=False).alias("gap_significant"),
            pl.col("significant").is_null().any().alias("untested"),
            pl.len().alias("n"),
        )
        .filter(pl.col("n") == len(set(baseline)))
        .drop("n")
    )
    rows = rows.join(tested, on=["experiment", "size"], how="left")
    refuted = pl.col("gap_significant").not_().fill_null(False)
    untested = pl.col("gap_significant").is_null() & pl.col("untested").fill_null(False)
    blank = refuted | untested
    return rows.with_columns(
        *[pl.when(blank).then(None).otherwise(pl.col(c)).alias(c) for c in SHARE_COLUMNS],
        gap_note=pl.when(refuted)
        .then(pl.lit(NO_SIGNIFICANT_GAP))
        .when(untested)
        .then(pl.lit(ONE_SEED_NOTE))
        .otherwise(note),
    ).drop("untested")


def mitigations_table(
    runs: pl.DataFrame,
    mitigations: Sequence[Mitigation] | None = None,
    *,
    real: str = REAL,
    min_gap: float = MIN_GAP,
    conditions: dict[str, str] | None = None,
    significant: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The rows of results/tables/mitigations.csv: per mitigation (by default every mitigated
    condition among the runs), baseline, experiment and size, the mitigated condition's BLEU
    (mean and 95% interval over all its seeds, as in the other tables) and the share of the gap
    closed with Fieller's interval.

    `significant` holds the experiment tables' tests against real (experiment, condition, size,
    significant), which gate the share (module doc). Columns: TABLE_COLUMNS, sorted by
    strategy, generator, condition, baseline, experiment, size.
    """
    if mitigations is None:
        found = (mitigation_of(c, conditions) for c in sorted(set(runs["condition"])))
        mitigations = [m for m in found if m is not None]
    frames = []
    for mitigation in mitigations:
        bleu = summarise(runs.filter(pl.col("condition") == mitigation.condition), ("bleu",))
        selection = _selection_effect(runs, mitigation.condition, real)
        for label, (baseline_runs, baseline) in _baselines(runs, mitigation):
            gaps = gap_closed(baseline_runs, real, baseline, mitigation.condition, min_gap=min_gap)
            gaps = _gate_on_significance(gaps, baseline, significant)
            frames.append(
                bleu.join(gaps, on=["experiment", "size"], how="inner")
                .join(selection, on=["experiment", "size"], how="left")
                .with_columns(
                    strategy=pl.lit(mitigation.strategy),
                    generator=pl.lit(mitigation.generator),
                    baseline=pl.lit(label),
                    deployable=pl.lit(parse_condition(mitigation.condition)["metric"] != ORACLE),
                )
            )
    if not frames:
        schema = {c: GAP_COLUMNS.get(c, pl.Float64) for c in TABLE_COLUMNS}
        schema.update(strategy=pl.String, generator=pl.String, condition=pl.String)
        schema.update(baseline=pl.String, gap_significant=pl.Boolean, gap_note=pl.String)
        schema.update(deployable=pl.Boolean)
        return pl.DataFrame(schema={**schema, "n_seeds": pl.UInt32})
    table = pl.concat(frames, how="vertical_relaxed").select(TABLE_COLUMNS)
    return table.sort(["strategy", "generator", "condition", "baseline", "experiment", "size"])
