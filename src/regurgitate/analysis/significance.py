"""Paired significance over test sentences, combining seeds.

Two systems (a condition and its baseline, usually `real`) translated the same test sentences,
once per seed. Both tests resample or shuffle *sentences*, with the same draw for every seed, and
compare the seed-averaged corpus BLEU of the two systems, so the uncertainty they give covers the
test set as well as the seeds:

- paired bootstrap resampling (Koehn 2004), as sacreBLEU's `--paired-bs` does it: resample test
  sentences with replacement; the interval is the 2.5 and 97.5 percentiles of the resampled
  differences; the p-value compares the observed difference with the resampled ones shifted to
  mean zero;
- approximate randomisation (Riezler and Maxwell 2005), as sacreBLEU's `--paired-ar`: swap each
  sentence's two translations with probability 1/2.

With one seed both are sacreBLEU's procedures, with its random draws for the same seed, with one
deliberate difference: a resampled statistic *equal* to the observed one counts against the
null here (sacreBLEU counts only larger ones), so a system compared with itself gets p = 1, not
p = 1/(n+1). Corpus BLEU is computed from sacreBLEU's own sufficient statistics and scorer.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import polars as pl
from sacrebleu.metrics import BLEU

# Two-sided 95% interval; a difference is called significant below this p-value.
ALPHA = 0.05
RESAMPLES = 1000
TRIALS = 10000
AR_BLOCK = 500


@dataclass(frozen=True)
class PairedResult:
    """System minus baseline: BLEU difference of the seed means, its 95% bootstrap interval,
    and the two p-values."""

    delta: float
    low: float
    high: float
    p_value: float
    n_seeds: int
    n_sentences: int


@cache
def _bleu() -> BLEU:
    return BLEU()


def sentence_stats(references: list[str], hypotheses: list[str]) -> np.ndarray:
    """sacreBLEU's per-sentence BLEU sufficient statistics: (sentences, 2 + 2 * max n-gram)."""
    if len(hypotheses) != len(references):
        raise ValueError(
            f"{len(hypotheses)} hypotheses for {len(references)} references: "
            "the test translations do not match the test set"
        )
    stats = _bleu()._extract_corpus_statistics(hypotheses, [references])
    return np.asarray(stats, dtype=np.float64)


def corpus_bleu(summed: np.ndarray) -> np.ndarray:
    """Corpus BLEU of every row of summed sufficient statistics."""
    metric = _bleu()
    return np.array([metric._compute_score_from_stats(list(row)).score for row in summed])


def _seed_stats(
    references: list[str], baseline: list[list[str]], system: list[list[str]]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    if not baseline or len(baseline) != len(system):
        raise ValueError(
            f"paired seeds needed: {len(baseline)} baseline and {len(system)} system runs"
        )
    if not references:
        raise ValueError("cannot test on an empty test set")
    return (
        [sentence_stats(references, hyps) for hyps in baseline],
        [sentence_stats(references, hyps) for hyps in system],
    )


def _mean_bleu(stats: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """Seed-mean corpus BLEU for each row of `weights` (how often each sentence is drawn)."""
    return np.mean([corpus_bleu(weights @ seed) for seed in stats], axis=0)


def _p_value(null_statistics: np.ndarray, observed: float) -> float:
    # The +1 keeps the test valid with few resamples (the observed draw is one of them).
    extreme = int(np.sum(null_statistics >= observed - 1e-9))
    return (extreme + 1) / (len(null_statistics) + 1)


def paired_bootstrap(
    references: list[str],
    baseline: list[list[str]],
    system: list[list[str]],
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> PairedResult:
    """Paired bootstrap of BLEU(system) - BLEU(baseline); `baseline[i]` and `system[i]` are the
    test translations of the same seed i."""
    baseline_stats, system_stats = _seed_stats(references, baseline, system)
    n = len(references)
    everything = np.ones((1, n))
    observed = float(
        _mean_bleu(system_stats, everything)[0] - _mean_bleu(baseline_stats, everything)[0]
    )
    rng = np.random.default_rng(seed)
    # sacreBLEU's draw: one (resamples, n) matrix of sentence indices, shared by every seed.
    indices = rng.choice(n, size=(resamples, n), replace=True)
    weights = np.stack([np.bincount(row, minlength=n) for row in indices]).astype(np.float64)
    differences = _mean_bleu(system_stats, weights) - _mean_bleu(baseline_stats, weights)
    spread = np.abs(differences)
    low, high = np.percentile(differences, [100 * ALPHA / 2, 100 * (1 - ALPHA / 2)])
    return PairedResult(
        delta=observed,
        low=float(low),
        high=float(high),
        p_value=_p_value(spread - spread.mean(), abs(observed)),
        n_seeds=len(baseline),
        n_sentences=n,
    )


def approximate_randomisation(
    references: list[str],
    baseline: list[list[str]],
    system: list[list[str]],
    *,
    trials: int = TRIALS,
    seed: int = 0,
) -> float:
    """Two-sided p-value of BLEU(system) != BLEU(baseline) by approximate randomisation; the
    same sentences are swapped in every seed's pair."""
    baseline_stats, system_stats = _seed_stats(references, baseline, system)
    n = len(references)
    everything = np.ones((1, n))
    observed = abs(
        float(_mean_bleu(system_stats, everything)[0] - _mean_bleu(baseline_stats, everything)[0])
    )
    rng = np.random.default_rng(seed)
    swap = rng.integers(2, size=(trials, n), dtype=bool)
    pairs = list(zip(baseline_stats, system_stats, strict=True))
    statistics = []
    # In blocks of trials: a float matrix of every trial at once takes trials x sentences x 16
    # bytes (1.6 GB for 10,000 trials of a 10,000-sentence test set).
    for start in range(0, trials, AR_BLOCK):
        block = swap[start : start + AR_BLOCK]
        kept, swapped = (~block).astype(np.float64), block.astype(np.float64)
        shuffled_a = np.mean([corpus_bleu(swapped @ b + kept @ s) for b, s in pairs], axis=0)
        shuffled_b = np.mean([corpus_bleu(kept @ b + swapped @ s) for b, s in pairs], axis=0)
        statistics.append(np.abs(shuffled_a - shuffled_b))
    return _p_value(np.concatenate(statistics), observed)


# One run: (experiment, condition, size, seed).
Run = tuple[str, str, int, int]

DIFFERENCE_COLUMNS = [
    "bleu_delta",
    "bleu_delta_low",
    "bleu_delta_high",
    "p_bootstrap",
    "p_randomisation",
    "significant",
    "paired_seeds",
]


def differences_to_baseline(
    references: list[str],
    hypotheses: dict[Run, list[str]],
    baseline: str,
    *,
    resamples: int = RESAMPLES,
    trials: int = TRIALS,
    seed: int = 0,
) -> pl.DataFrame:
    """Every condition against `baseline` at the same experiment and size, on the seeds both
    ran: BLEU difference with its bootstrap interval, both p-values, and `significant` where
    both tests reject equality at ALPHA. Columns: experiment, condition, size, then
    DIFFERENCE_COLUMNS; the baseline itself has no row."""
    groups: dict[tuple[str, str, int], dict[int, list[str]]] = {}
    for (experiment, condition, size, run_seed), lines in hypotheses.items():
        groups.setdefault((experiment, condition, size), {})[run_seed] = lines
    rows = []
    for (experiment, condition, size), runs in sorted(groups.items()):
        base = groups.get((experiment, baseline, size))
        if condition == baseline or base is None:
            continue
        seeds = sorted(set(runs) & set(base))
        if not seeds:
            raise ValueError(
                f"{experiment} {condition} at size {size} shares no seed with {baseline}"
            )
        pair = ([base[s] for s in seeds], [runs[s] for s in seeds])
        result = paired_bootstrap(references, *pair, resamples=resamples, seed=seed)
        p_ar = approximate_randomisation(references, *pair, trials=trials, seed=seed)
        rows.append(
            {
                "experiment": experiment,
                "condition": condition,
                "size": size,
                "bleu_delta": result.delta,
                "bleu_delta_low": result.low,
                "bleu_delta_high": result.high,
                "p_bootstrap": result.p_value,
                "p_randomisation": p_ar,
                "significant": max(result.p_value, p_ar) < ALPHA,
                "paired_seeds": len(seeds),
            }
        )
    schema = {
        "experiment": pl.String,
        "condition": pl.String,
        "size": pl.Int64,
        **dict.fromkeys(DIFFERENCE_COLUMNS[:5], pl.Float64),
        "significant": pl.Boolean,
        "paired_seeds": pl.Int64,
    }
    return pl.DataFrame(rows, schema=schema)
