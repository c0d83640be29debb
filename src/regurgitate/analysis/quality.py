"""Per-pair quality of synthetic data, for ordering it best first (S1 of the study).

Every metric is "higher is better" (costs are negated) and returns a float array aligned with
its input rows. All but `oracle` need no human reference, as in practice synthetic data has
none; `oracle` (chrF against the reference) is the upper bound the others are judged against,
through `rank_correlation`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import polars as pl
from scipy.special import ndtri

from regurgitate.engine.metrics import sentence_chrf
from regurgitate.study.vocabulary import QUALITY_METRICS

# Two-sided interval of rank correlations.
CONFIDENCE = 0.95


def confidence(logprob, tokens, *, counts_eos: bool = True) -> np.ndarray:
    """The generator's length-normalised log-probability of its own target.

    `logprob` is the sum over the target's tokens and `tokens` their number, as in the synthetic
    parquet. The local decoder's `logprob` includes the end-of-sentence token that `tokens`
    leaves out, hence the division by tokens + 1 (`counts_eos=False` divides by tokens, for
    backends whose log-probability covers the visible tokens only).

    Raises ValueError where a logprob is null or NaN (API backends that give none): this metric
    then does not exist for the generator, and filling in a value would rank rows by a guess.
    """
    logprob = pl.Series("logprob", logprob, dtype=pl.Float64)
    tokens = pl.Series("tokens", tokens, dtype=pl.Float64)
    _check_same_length(logprob, tokens)
    missing = (logprob.is_null() | logprob.is_nan()).arg_true()
    if missing.len():
        raise ValueError(
            f"{missing.len()} of {logprob.len()} rows have no logprob (first: row {missing[0]}); "
            "the generator's backend gives none, so 'confidence' cannot rank its output"
        )
    positions = tokens + 1 if counts_eos else tokens.clip(lower_bound=1)
    return (logprob / positions).to_numpy()


def consensus(targets: list[str], others: Sequence[list[str]]) -> np.ndarray:
    """Mean sentence chrF of each target against other generators' translations of its source.

    `others` holds one list per other generator, each aligned with `targets` (see
    `aligned_targets`). A target that agrees with independent translations is less likely to
    be wrong.
    """
    if not others:
        raise ValueError("consensus needs the translations of at least one other generator")
    scores = [sentence_chrf(targets, list(other)) for other in others]
    return np.mean(np.asarray(scores, dtype=np.float64), axis=0)


def round_trip(back_translations: list[str], sources: list[str]) -> np.ndarray:
    """Sentence chrF of the back-translation (target translated back by a reverse model)
    against the source: what of the source survived the translation."""
    return np.asarray(sentence_chrf(back_translations, sources), dtype=np.float64)


def dual_cross_entropy(forward_nll, reverse_nll) -> np.ndarray:
    """Junczys-Dowmunt (2018) dual conditional cross-entropy, negated so that higher is better.

    `forward_nll` and `reverse_nll` are per-token NLLs of the pair under a forward (source to
    target) and a reverse (target to source) model trained on the same data (see
    scoring.pair_nll). A good pair is likely under both (low mean) and equally so (low
    difference): score = -(|H_f - H_r| + (H_f + H_r) / 2).
    """
    forward = np.asarray(forward_nll, dtype=np.float64)
    reverse = np.asarray(reverse_nll, dtype=np.float64)
    if forward.shape != reverse.shape:
        raise ValueError(
            f"forward and reverse NLLs differ in length: {forward.shape} and {reverse.shape}"
        )
    return -(np.abs(forward - reverse) + 0.5 * (forward + reverse))


def oracle(targets: list[str], references: list[str]) -> np.ndarray:
    """Sentence chrF against the human reference: the upper bound, unavailable in practice."""
    return np.asarray(sentence_chrf(targets, references), dtype=np.float64)


def reverse_direction(pairs: pl.DataFrame) -> pl.DataFrame:
    """The same pairs the other way round (target becomes source), for training a reverse
    (English to German) model or back-translating with the existing trainer and generator.

    Keeps `id` where present; drops other columns, which describe the forward direction.
    """
    missing = [c for c in ("source", "target") if c not in pairs.columns]
    if missing:
        raise ValueError(f"pairs lack the columns {missing}")
    keep = ["id"] if "id" in pairs.columns else []
    return pairs.select(*keep, pl.col("target").alias("source"), pl.col("source").alias("target"))


def rank_correlation(metric, oracle_scores, *, confidence_level: float = CONFIDENCE) -> dict:
    """Spearman's rho between a metric and the oracle, with p-value and interval.

    Returns {"rho", "p_value", "ci_low", "ci_high", "n"}. The interval is Fisher's z with the
    Bonett-Wright (2000) standard error for Spearman, sqrt((1 + rho^2 / 2) / (n - 3)): analytic,
    so deterministic and instant on a whole pool. With fewer than 4 rows there is no interval
    (None); with a constant input there is no correlation (rho and p are NaN).
    """
    x = np.asarray(metric, dtype=np.float64)
    y = np.asarray(oracle_scores, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"metric and oracle differ in length: {x.shape} and {y.shape}")
    if np.isnan(x).any() or np.isnan(y).any():
        raise ValueError("metric or oracle holds NaN; rank correlation needs a value per row")
    n = int(x.size)
    if n < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return {"rho": math.nan, "p_value": math.nan, "ci_low": None, "ci_high": None, "n": n}
    with warnings.catch_warnings():
        # Two rows give rho = +-1 exactly; scipy warns about the p-value, which is then 1.
        warnings.simplefilter("ignore", RuntimeWarning)
        # scipy.stats takes a second to import: only the jobs that correlate pay for it
        from scipy.stats import spearmanr

        result = spearmanr(x, y)
    rho, p_value = float(result.statistic), float(result.pvalue)
    low = high = None
    if n >= 4:
        z = math.atanh(min(max(rho, -0.999999), 0.999999))
        half = ndtri(0.5 + confidence_level / 2) * math.sqrt((1 + rho**2 / 2) / (n - 3))
        low, high = math.tanh(z - half), math.tanh(z + half)
    return {"rho": rho, "p_value": p_value, "ci_low": low, "ci_high": high, "n": n}


def aligned_column(ids: list[str], frame: pl.DataFrame, column: str, what: str) -> pl.Series:
    """`frame[column]` for `ids`, in that order; ValueError naming `what` if an id has none."""
    wanted = pl.DataFrame({"id": ids}, schema={"id": pl.String})
    joined = wanted.join(frame.select("id", column), on="id", how="left", maintain_order="left")
    missing = joined.filter(pl.col(column).is_null())
    if missing.height:
        raise ValueError(
            f"{what} has no {column} for {missing.height} ids (first: {missing['id'][0]})"
        )
    return joined[column]


def aligned_targets(ids: list[str], synthetic: pl.DataFrame, generator: str) -> list[str]:
    """The generator's targets for `ids`, in that order; ValueError if an id has none."""
    return aligned_column(ids, synthetic, "target", f"generator {generator!r}").to_list()


def quality_table(
    student: pl.DataFrame,
    synthetic: pl.DataFrame,
    generator: str,
    metrics: Sequence[str],
    *,
    others: dict[str, pl.DataFrame] | None = None,
    back_translations: pl.DataFrame | None = None,
    forward_nll: pl.DataFrame | None = None,
    reverse_nll: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Columns `id` and one per metric: the quality of each of the generator's student-pool pairs.

    Rows follow `student` (id, source, target: the human reference, used by `oracle` only).
    What each metric needs, all joined on `id`:
      confidence          `synthetic` logprob and tokens
      consensus           `others`: other generators' synthetic data, by name
      round_trip          `back_translations`: target = the generator's target translated back
      dual_cross_entropy  `forward_nll`, `reverse_nll`: column `nll` (see nll_job)
      oracle              `student` target
    Raises ValueError naming a metric whose input is missing.
    """
    unknown = sorted(set(metrics) - set(QUALITY_METRICS))
    if unknown:
        raise ValueError(f"unknown quality metrics {unknown}; known: {list(QUALITY_METRICS)}")
    ids = student["id"].to_list()
    sources = student["source"].to_list()
    targets = aligned_targets(ids, synthetic, generator)
    inputs = {
        "consensus": others,
        "round_trip": back_translations,
        "dual_cross_entropy": reverse_nll if forward_nll is not None else None,
    }
    lacking = [metric for metric in metrics if metric in inputs and inputs[metric] is None]
    if lacking:
        raise ValueError(f"quality metrics {lacking} of {generator!r} lack their inputs")
    columns = {"id": ids}
    for metric in metrics:
        if metric == "confidence":
            logprob = aligned_column(ids, synthetic, "logprob", f"generator {generator!r}")
            tokens = aligned_column(ids, synthetic, "tokens", f"generator {generator!r}")
            columns[metric] = confidence(logprob, tokens)
        elif metric == "consensus":
            rivals = [aligned_targets(ids, frame, name) for name, frame in sorted(others.items())]
            columns[metric] = consensus(targets, rivals)
        elif metric == "round_trip":
            back = aligned_targets(ids, back_translations, f"{generator} back-translated")
            columns[metric] = round_trip(back, sources)
        elif metric == "dual_cross_entropy":
            forward = aligned_column(ids, forward_nll, "nll", "forward scores").to_numpy()
            reverse = aligned_column(ids, reverse_nll, "nll", "reverse scores").to_numpy()
            columns[metric] = dual_cross_entropy(forward, reverse)
        else:
            columns[metric] = oracle(targets, student["target"].to_list())
    return pl.DataFrame(columns)


def correlation_table(quality: pl.DataFrame, generator: str) -> pl.DataFrame:
    """Each reference-free metric's rank correlation with `oracle`, one row per metric:
    generator, metric, rho, p_value, ci_low, ci_high, n."""
    if "oracle" not in quality.columns:
        raise ValueError(f"the quality table of {generator!r} has no oracle column")
    rows = [
        {
            "generator": generator,
            "metric": metric,
            **rank_correlation(quality[metric], quality["oracle"]),
        }
        for metric in quality.columns
        if metric not in ("id", "oracle")
    ]
    schema = {"generator": pl.String, "metric": pl.String, "rho": pl.Float64}
    schema.update(p_value=pl.Float64, ci_low=pl.Float64, ci_high=pl.Float64, n=pl.Int64)
    return pl.DataFrame(rows, schema=schema)


def _check_same_length(a: pl.Series, b: pl.Series) -> None:
    if a.len() != b.len():
        raise ValueError(f"{a.name} and {b.name} differ in length: {a.len()} and {b.len()}")
