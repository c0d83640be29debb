"""Is a training condition's BLEU different from its baseline's, counting training noise?

Two conditions (a condition and its baseline, usually `real`) were each trained with several
seeds, and every run translated the same test sentences. The question the study asks is whether
the *condition* changes the model one gets, so the uncertainty of a difference must include
what changes from one training run to the next, not only which test sentences were drawn
(Clark, Dyer, Lavie and Smith 2011, "Better hypothesis testing for statistical machine
translation: controlling for optimizer instability").

The test behind `significant` is a two-level (hierarchical) bootstrap of the difference of the
seed-mean corpus BLEU (`seeds_and_sentences_bootstrap`, column `p_seeds_and_sentences`). Each
replicate

1. resamples the test sentences with replacement, one draw shared by every run of both
   conditions (the systems are paired on their sentences), and scores every run's corpus BLEU
   on that draw from its per-sentence sufficient statistics;
2. resamples the seeds of each condition with replacement, independently per condition (runs of
   one seed share their sources, but the training noise of two conditions is independent), and
   averages the picked runs' BLEU. The mean of a resample of n values varies by (n-1)/n of
   s^2/n, the variance of the mean of n seeds (half of it with 2 seeds, two thirds with 3), so
   each replicate's seed mean is moved away from the mean of all its seeds by a factor
   sqrt(n/(n-1)), which makes the seed level's bootstrap variance s^2/n. Resampling the top
   level of hierarchical data, and this correction of its variance, are those of Davison and
   Hinkley (1997, "Bootstrap methods and their application", section 3.8).

The interval is the 2.5 and 97.5 percentiles of the replicates' differences; the two-sided
p-value counts the replicates, centred on their mean, at least as far from zero as the observed
difference, (1 + count) / (1 + replicates), so identical systems get p = 1. With fewer than two
seeds on either side training variance cannot be estimated: the p-value and `significant` are
empty and `significance_note` says ONE_SEED_NOTE; the interval is then over sentences only.

Beside it the table keeps the sentence-level tests, which resample or shuffle sentences with
the same draw for every seed and compare seed-averaged BLEU: they answer "do these particular
trained models differ on this test set?", not whether the condition does:

- `p_sentences_bootstrap`: paired bootstrap resampling (Koehn 2004), as sacreBLEU's
  `--paired-bs` does it: the p-value compares the observed difference with the resampled ones
  shifted to mean zero;
- `p_sentences_randomisation`: approximate randomisation (Riezler and Maxwell 2005), as
  sacreBLEU's `--paired-ar`: swap each sentence's two translations with probability 1/2.

With one seed both are sacreBLEU's procedures, with its random draws for the same seed, with one
deliberate difference: a resampled statistic *equal* to the observed one counts against the
null here (sacreBLEU counts only larger ones), so a system compared with itself gets p = 1, not
p = 1/(n+1).

Practical size stands beside: the sd of the per-seed BLEU of both sides (`seed_sd`,
`baseline_seed_sd`) and the difference in units of their pooled sd (`delta_in_seed_sd` =
bleu_delta / sqrt((seed_sd^2 + baseline_seed_sd^2) / 2)), empty with one seed or no spread.

Corpus BLEU is sacreBLEU's: its per-sentence sufficient statistics, summed, and its formula
(exponential smoothing, no effective order) computed on arrays (`corpus_bleu`, tested equal to
sacreBLEU's scorer).
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
ONE_SEED_NOTE = "one seed: training variance untested"
# sacreBLEU's floor of log(0) (sacrebleu.utils.my_log).
LOG_ZERO = -9999999999.0


@dataclass(frozen=True)
class PairedResult:
    """System minus baseline, sentences resampled: BLEU difference of the seed means, its 95%
    bootstrap interval, and the p-value."""

    delta: float
    low: float
    high: float
    p_value: float
    n_seeds: int
    n_sentences: int


@dataclass(frozen=True)
class TrainingResult:
    """System minus baseline, seeds and sentences resampled (the module's first test): BLEU
    difference of the seed means, its 95% interval, the p-value (None with fewer than two seeds
    on a side), and each side's seed sd (None with one seed)."""

    delta: float
    low: float
    high: float
    p_value: float | None
    seed_sd: float | None
    baseline_seed_sd: float | None
    n_seeds: int
    n_baseline_seeds: int
    n_sentences: int

    @property
    def delta_in_seed_sd(self) -> float | None:
        """The difference in units of the two sides' pooled seed sd."""
        if self.seed_sd is None or self.baseline_seed_sd is None:
            return None
        pooled = ((self.seed_sd**2 + self.baseline_seed_sd**2) / 2) ** 0.5
        return self.delta / pooled if pooled > 0 else None


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
    """Corpus BLEU of summed sufficient statistics (..., 2 + 2 * max n-gram) -> (...):
    sacreBLEU's BLEU.compute_bleu with its default exponential smoothing, on arrays."""
    metric = _bleu()
    if metric.smooth_method != "exp" or metric.effective_order:
        raise NotImplementedError("corpus_bleu follows sacreBLEU's default BLEU only")
    summed = np.asarray(summed, dtype=np.float64)
    order = (summed.shape[-1] - 2) // 2
    sys_len, ref_len = summed[..., 0], summed[..., 1]
    correct, total = summed[..., 2 : 2 + order], summed[..., 2 + order :]
    with np.errstate(divide="ignore", invalid="ignore"):
        penalty = np.where(
            sys_len < ref_len, np.where(sys_len > 0, np.exp(1 - ref_len / sys_len), 0.0), 1.0
        )
        # sacreBLEU stops at the first order without n-grams; the later precisions stay 0.
        counted = np.cumprod(total > 0, axis=-1).astype(bool)
        missed = counted & (correct == 0)
        # Exponential smoothing: the k-th order without a match gets 1 / (2^k * total).
        smoothed = 100.0 / (2.0 ** np.cumsum(missed, axis=-1) * total)
        precisions = np.where(missed, smoothed, 100.0 * correct / total)
        precisions = np.where(counted, precisions, 0.0)
        logs = np.where(precisions > 0, np.log(np.where(precisions > 0, precisions, 1.0)), LOG_ZERO)
    # Summed left to right from 0, in sacreBLEU's order, so that the scores are identical.
    log_sum = np.zeros(summed.shape[:-1])
    for n in range(order):
        log_sum = log_sum + logs[..., n]
    score = penalty * np.exp(log_sum / order)
    return np.where(correct.any(axis=-1), score, 0.0)


def _seed_stats(
    references: list[str], baseline: list[list[str]], system: list[list[str]]
) -> tuple[np.ndarray, np.ndarray]:
    if not baseline or len(baseline) != len(system):
        raise ValueError(
            f"paired seeds needed: {len(baseline)} baseline and {len(system)} system runs"
        )
    if not references:
        raise ValueError("cannot test on an empty test set")
    return (
        np.stack([sentence_stats(references, hyps) for hyps in baseline]),
        np.stack([sentence_stats(references, hyps) for hyps in system]),
    )


def _run_bleu(stats: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Corpus BLEU of every run (stats: runs x sentences x statistics) for each row of `weights`
    (how often each sentence is drawn): replicates x runs."""
    return corpus_bleu(np.matmul(weights[None], stats)).T


def _mean_bleu(stats: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Seed-mean corpus BLEU for each row of `weights`."""
    return _run_bleu(stats, weights).mean(axis=1)


def _sentence_weights(rng: np.random.Generator, n: int, resamples: int) -> np.ndarray:
    """sacreBLEU's draw (one resamples x n matrix of sentence indices) as counts per sentence."""
    indices = rng.choice(n, size=(resamples, n), replace=True)
    flat = (indices + n * np.arange(resamples)[:, None]).ravel()
    return np.bincount(flat, minlength=resamples * n).reshape(resamples, n).astype(np.float64)


def _p_value(null_statistics: np.ndarray, observed: float) -> float:
    # The +1 keeps the test valid with few resamples (the observed draw is one of them).
    extreme = int(np.sum(null_statistics >= observed - 1e-9))
    return (extreme + 1) / (len(null_statistics) + 1)


def _sd(values: np.ndarray) -> float | None:
    return float(np.std(values, ddof=1)) if len(values) > 1 else None


def bootstrap_from_stats(
    baseline_stats: np.ndarray,
    system_stats: np.ndarray,
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> TrainingResult:
    """The two-level bootstrap (module doc) on per-sentence sufficient statistics, runs x
    sentences x statistics for each side; the two sides' runs need not be paired."""
    baseline_stats, system_stats = np.asarray(baseline_stats), np.asarray(system_stats)
    n = baseline_stats.shape[1]
    if system_stats.shape[1] != n:
        raise ValueError(f"{system_stats.shape[1]} test sentences against {n} of the baseline")
    everything = np.ones((1, n))
    baseline_bleu = _run_bleu(baseline_stats, everything)[0]
    system_bleu = _run_bleu(system_stats, everything)[0]
    observed = float(system_bleu.mean() - baseline_bleu.mean())

    rng = np.random.default_rng(seed)
    weights = _sentence_weights(rng, n, resamples)
    differences = _seed_means(system_stats, weights, rng) - _seed_means(
        baseline_stats, weights, rng
    )
    low, high = np.percentile(differences, [100 * ALPHA / 2, 100 * (1 - ALPHA / 2)])
    tested = min(len(baseline_stats), len(system_stats)) >= 2
    centred = np.abs(differences - differences.mean())
    return TrainingResult(
        delta=observed,
        low=float(low),
        high=float(high),
        p_value=_p_value(centred, abs(observed)) if tested else None,
        seed_sd=_sd(system_bleu),
        baseline_seed_sd=_sd(baseline_bleu),
        n_seeds=len(system_stats),
        n_baseline_seeds=len(baseline_stats),
        n_sentences=n,
    )


def _seed_means(stats: np.ndarray, weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per replicate (row of `weights`), the mean BLEU of a resample of the runs, its distance
    from the mean of all runs scaled by sqrt(runs / (runs - 1)) (module doc)."""
    bleu = _run_bleu(stats, weights)
    runs = bleu.shape[1]
    every_run = bleu.mean(axis=1)
    if runs < 2:
        return every_run
    picks = rng.integers(runs, size=bleu.shape)
    picked = np.take_along_axis(bleu, picks, axis=1).mean(axis=1)
    return every_run + np.sqrt(runs / (runs - 1)) * (picked - every_run)


def seeds_and_sentences_bootstrap(
    references: list[str],
    baseline: list[list[str]],
    system: list[list[str]],
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> TrainingResult:
    """The two-level bootstrap of BLEU(system) - BLEU(baseline) (module doc); `baseline[i]` and
    `system[i]` are the test translations of seed i."""
    baseline_stats, system_stats = _seed_stats(references, baseline, system)
    return bootstrap_from_stats(baseline_stats, system_stats, resamples=resamples, seed=seed)


def _sentences_bootstrap(
    baseline_stats: np.ndarray, system_stats: np.ndarray, *, resamples: int, seed: int
) -> PairedResult:
    n = baseline_stats.shape[1]
    everything = np.ones((1, n))
    observed = float(
        _mean_bleu(system_stats, everything)[0] - _mean_bleu(baseline_stats, everything)[0]
    )
    rng = np.random.default_rng(seed)
    # sacreBLEU's draw: one (resamples, n) matrix of sentence indices, shared by every seed.
    weights = _sentence_weights(rng, n, resamples)
    differences = _mean_bleu(system_stats, weights) - _mean_bleu(baseline_stats, weights)
    spread = np.abs(differences)
    low, high = np.percentile(differences, [100 * ALPHA / 2, 100 * (1 - ALPHA / 2)])
    return PairedResult(
        delta=observed,
        low=float(low),
        high=float(high),
        p_value=_p_value(spread - spread.mean(), abs(observed)),
        n_seeds=len(baseline_stats),
        n_sentences=n,
    )


def paired_bootstrap(
    references: list[str],
    baseline: list[list[str]],
    system: list[list[str]],
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> PairedResult:
    """Paired bootstrap over test sentences of BLEU(system) - BLEU(baseline), the same draw for
    every seed; `baseline[i]` and `system[i]` are the test translations of the same seed i."""
    baseline_stats, system_stats = _seed_stats(references, baseline, system)
    return _sentences_bootstrap(baseline_stats, system_stats, resamples=resamples, seed=seed)


def _sentences_randomisation(
    baseline_stats: np.ndarray, system_stats: np.ndarray, *, trials: int, seed: int
) -> float:
    n = baseline_stats.shape[1]
    everything = np.ones((1, n))
    observed = abs(
        float(_mean_bleu(system_stats, everything)[0] - _mean_bleu(baseline_stats, everything)[0])
    )
    rng = np.random.default_rng(seed)
    swap = rng.integers(2, size=(trials, n), dtype=bool)
    statistics = []
    # In blocks of trials: a float matrix of every trial at once takes trials x sentences x 16
    # bytes (1.6 GB for 10,000 trials of a 10,000-sentence test set).
    for start in range(0, trials, AR_BLOCK):
        block = swap[start : start + AR_BLOCK]
        kept, swapped = (~block).astype(np.float64), block.astype(np.float64)
        # Corpus BLEU is not additive, so each shuffled system is scored from its summed stats.
        shuffled_a = corpus_bleu(
            np.matmul(swapped[None], baseline_stats) + np.matmul(kept[None], system_stats)
        ).mean(axis=0)
        shuffled_b = corpus_bleu(
            np.matmul(kept[None], baseline_stats) + np.matmul(swapped[None], system_stats)
        ).mean(axis=0)
        statistics.append(np.abs(shuffled_a - shuffled_b))
    return _p_value(np.concatenate(statistics), observed)


def approximate_randomisation(
    references: list[str],
    baseline: list[list[str]],
    system: list[list[str]],
    *,
    trials: int = TRIALS,
    seed: int = 0,
) -> float:
    """Two-sided p-value of BLEU(system) != BLEU(baseline) by approximate randomisation over
    test sentences; the same sentences are swapped in every seed's pair."""
    baseline_stats, system_stats = _seed_stats(references, baseline, system)
    return _sentences_randomisation(baseline_stats, system_stats, trials=trials, seed=seed)


# One run: (experiment, condition, size, seed).
Run = tuple[str, str, int, int]

DIFFERENCE_COLUMNS = [
    "bleu_delta",
    "bleu_delta_low",
    "bleu_delta_high",
    "p_seeds_and_sentences",
    "p_sentences_bootstrap",
    "p_sentences_randomisation",
    "seed_sd",
    "baseline_seed_sd",
    "delta_in_seed_sd",
    "significant",
    "significance_note",
    "paired_seeds",
]

DIFFERENCE_SCHEMA = {
    **dict.fromkeys(DIFFERENCE_COLUMNS[:9], pl.Float64),
    "significant": pl.Boolean,
    "significance_note": pl.String,
    "paired_seeds": pl.Int64,
}


def compare(
    baseline_stats: np.ndarray,
    system_stats: np.ndarray,
    *,
    resamples: int = RESAMPLES,
    trials: int = TRIALS,
    seed: int = 0,
) -> dict:
    """The DIFFERENCE_COLUMNS of a system against its baseline, from the per-sentence statistics
    of their paired seeds (seeds x sentences x statistics, seed i of both sides the same)."""
    if len(baseline_stats) != len(system_stats) or not len(baseline_stats):
        raise ValueError(
            f"paired seeds needed: {len(baseline_stats)} baseline and {len(system_stats)} "
            "system runs"
        )
    result = bootstrap_from_stats(baseline_stats, system_stats, resamples=resamples, seed=seed)
    sentences = _sentences_bootstrap(baseline_stats, system_stats, resamples=resamples, seed=seed)
    randomised = _sentences_randomisation(baseline_stats, system_stats, trials=trials, seed=seed)
    tested = result.p_value is not None
    return {
        "bleu_delta": result.delta,
        "bleu_delta_low": result.low,
        "bleu_delta_high": result.high,
        "p_seeds_and_sentences": result.p_value,
        "p_sentences_bootstrap": sentences.p_value,
        "p_sentences_randomisation": randomised,
        "seed_sd": result.seed_sd,
        "baseline_seed_sd": result.baseline_seed_sd,
        "delta_in_seed_sd": result.delta_in_seed_sd,
        "significant": result.p_value < ALPHA if tested else None,
        "significance_note": None if tested else ONE_SEED_NOTE,
        "paired_seeds": len(system_stats),
    }


def compare_translations(
    references: list[str],
    baseline: list[list[str]],
    system: list[list[str]],
    *,
    resamples: int = RESAMPLES,
    trials: int = TRIALS,
    seed: int = 0,
) -> dict:
    """`compare` on the test translations of the paired seeds (`baseline[i]`, `system[i]`)."""
    baseline_stats, system_stats = _seed_stats(references, baseline, system)
    return compare(baseline_stats, system_stats, resamples=resamples, trials=trials, seed=seed)


def differences_from_stats(
    stats: dict[Run, np.ndarray],
    baseline: str,
    *,
    resamples: int = RESAMPLES,
    trials: int = TRIALS,
    seed: int = 0,
) -> pl.DataFrame:
    """differences_to_baseline on each run's per-sentence sufficient statistics."""
    groups: dict[tuple[str, str, int], dict[int, np.ndarray]] = {}
    for (experiment, condition, size, run_seed), run_stats in stats.items():
        groups.setdefault((experiment, condition, size), {})[run_seed] = run_stats
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
        pair = (np.stack([base[s] for s in seeds]), np.stack([runs[s] for s in seeds]))
        rows.append(
            {
                "experiment": experiment,
                "condition": condition,
                "size": size,
                **compare(*pair, resamples=resamples, trials=trials, seed=seed),
            }
        )
    schema = {"experiment": pl.String, "condition": pl.String, "size": pl.Int64}
    return pl.DataFrame(rows, schema=schema | DIFFERENCE_SCHEMA)


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
    ran: BLEU difference with the two-level bootstrap's interval and p-value, the sentence-level
    tests' p-values, each side's seed sd and the difference in seed sds, and `significant` by
    the two-level bootstrap (null, with `significance_note`, where a side has one seed).
    Columns: experiment, condition, size, then DIFFERENCE_COLUMNS; the baseline itself has no
    row."""
    if not references:
        raise ValueError("cannot test on an empty test set")
    stats = {run: sentence_stats(references, lines) for run, lines in hypotheses.items()}
    return differences_from_stats(stats, baseline, resamples=resamples, trials=trials, seed=seed)
