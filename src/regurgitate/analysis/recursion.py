"""What each generation of the recursion experiment keeps of the human data: its test scores,
its translations' errors and lexical diversity (the mechanisms' code), and its tail.

The tail measure follows Shumailov et al. (2024): a model trained on generated data loses the
improbable events first. Here those are the rare words of the human references a lineage
started from: words of its sources' human targets that the student pool's human targets hold at
most `max_count` times. A generation's tail is how many of them its translations of the same
sources still contain.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import polars as pl

from regurgitate.analysis.aggregate import t_interval
from regurgitate.analysis.diversity import MEASURES, diversity_profile, profile_values, tokenize
from regurgitate.analysis.significance import DIFFERENCE_COLUMNS, differences_to_baseline
from regurgitate.analysis.translation_errors import error_profile
from regurgitate.study.curricula import generated_targets
from regurgitate.study.vocabulary import GENERATION_ZERO_REGIME, HUMAN, REGIMES

# --- the tail -----------------------------------------------------------------------------------


class NoRareWords(ValueError):
    """The references hold no word rare enough for the tail measure."""


def words(sentences: Sequence[str]) -> set[str]:
    """The words of `sentences`: lowercased 13a tokens without punctuation, as diversity counts
    them."""
    return {word for sentence in sentences for word in tokenize(sentence)}


def rare_words(corpus: Sequence[str], max_count: int) -> set[str]:
    """The words that occur at least once and at most `max_count` times in `corpus`."""
    if max_count < 1:
        raise ValueError(f"a rare word occurs at most max_count >= 1 times, got {max_count}")
    counts = Counter(word for sentence in corpus for word in tokenize(sentence))
    return {word for word, count in counts.items() if count <= max_count}


def tail_profile(
    references: Sequence[str],
    hypotheses: Sequence[str],
    max_count: int,
    corpus: Sequence[str] | None = None,
) -> dict:
    """How many of the references' rare words occur anywhere in `hypotheses`: the words of
    `references` that `corpus` (by default the references themselves) holds at most
    `max_count` times.

    Returns {"max_count", "rare_words" (how many there are), "produced" (how many of them the
    hypotheses contain), "share" (produced / rare_words)}.
    """
    rare = rare_words(references if corpus is None else corpus, max_count) & words(references)
    if not rare:
        raise NoRareWords(f"the references hold no word seen at most {max_count} times")
    produced = rare & words(hypotheses)
    return {
        "max_count": max_count,
        "rare_words": len(rare),
        "produced": len(produced),
        "share": len(produced) / len(rare),
    }


# --- one generation -----------------------------------------------------------------------------


def generation_measures(
    human: pl.DataFrame,
    translations: pl.DataFrame | None,
    name: str,
    *,
    chrf_threshold: float,
    sample_tokens: int | None,
    bootstrap: int,
    seed: int,
    keep_punctuation: bool,
    tail_max_count: int,
    tail_corpus: Sequence[str] | None = None,
) -> dict:
    """Errors, diversity and tail of a generation's translations of its lineage's sources, with
    the mechanisms' measures (translation_errors, diversity).

    `human` is generation 0's curriculum (the sources and their human targets); `translations`
    None measures the human targets themselves (no errors, a full tail), the line a generation
    is read against. Diversity is measured on a sample of `sample_tokens` tokens, seeded by
    `seed`, so every generation of a lineage is sampled from the same sentences; None leaves it
    out (a text of fewer than diversity.MIN_DIVERSITY_TOKENS tokens). A word is rare for the
    tail where `tail_corpus` (the student pool's human targets; by default `human`'s) holds it
    at most `tail_max_count` times.
    """
    references = human["target"].to_list()
    record = {"source": name, "n": human.height, "chrf_threshold": chrf_threshold}
    record |= {"error_rate": None, "ter": None, "mean_sentence_chrf": None, "flags": None}
    targets = references
    if translations is not None:
        pairs = generated_targets(human, translations, name, "lineage")
        targets = pairs["target"].to_list()
        errors = error_profile(
            pairs["source"].to_list(), targets, references, chrf_threshold=chrf_threshold
        )
        record |= {key: errors[key] for key in ("error_rate", "ter", "mean_sentence_chrf")}
        record["flags"] = errors["flags"]
    record["sample_tokens"] = sample_tokens
    record["diversity"] = (
        None
        if sample_tokens is None
        else diversity_profile(
            targets,
            sample_tokens=sample_tokens,
            seed=seed,
            bootstrap=bootstrap,
            keep_punctuation=keep_punctuation,
        )
    )
    record["tail"] = tail_profile(references, targets, tail_max_count, tail_corpus)
    return record


# --- the table ----------------------------------------------------------------------------------

KEY = ["regime", "generation", "size"]
# Per run, the values the table summarises over seeds (mean and 95% t-interval).
SCORE_VALUES = ["bleu", "chrf"]
ERROR_VALUES = ["error_rate", "ter"]
TAIL_VALUES = ["tail_share", "tail_words", "rare_words"]
VALUES = [*SCORE_VALUES, *ERROR_VALUES, *MEASURES, *TAIL_VALUES]


def measure_values(record: dict) -> dict:
    """The table's values of one measures record (generation_measures)."""
    tail = record["tail"]
    return {
        "error_rate": record["error_rate"],
        "ter": record["ter"],
        **{measure: profile_values(record["diversity"], measure)["value"] for measure in MEASURES},
        "tail_share": tail["share"],
        "tail_words": tail["produced"],
        "rare_words": tail["rare_words"],
    }


def regime_order(regime: str) -> int:
    """Human references first, then generation 0, then the regimes in vocabulary order."""
    return [HUMAN, GENERATION_ZERO_REGIME, *REGIMES].index(regime)


def summarise_runs(runs: pl.DataFrame) -> pl.DataFrame:
    """Mean and 95% t-interval over seeds of every value in VALUES, per regime, generation and
    size; a value no run of a group has (the human rows' BLEU) stays null."""
    rows = []
    for key, group in runs.group_by(KEY, maintain_order=True):
        row = dict(zip(KEY, key, strict=True)) | {"n_seeds": group.height}
        for value in VALUES:
            present = group[value].drop_nulls().to_list()
            summary = t_interval(present) if present else {}
            for stat in ("mean", "ci_low", "ci_high"):
                row[f"{value}_{stat}"] = summary.get(stat)
        rows.append(row)
    schema = {"regime": pl.String, "generation": pl.Int64, "size": pl.Int64, "n_seeds": pl.Int64}
    schema |= {f"{v}_{s}": pl.Float64 for v in VALUES for s in ("mean", "ci_low", "ci_high")}
    return pl.DataFrame(rows, schema=schema)


def generation_differences(
    references: list[str],
    hypotheses: dict[tuple[str, int, int, int], list[str]],
    *,
    seed: int,
    resamples: int,
    trials: int,
) -> pl.DataFrame:
    """Every generation's BLEU against generation 0 of the same size, paired by seed, with the
    tests of analysis.significance (the two-level bootstrap over seeds and test sentences behind
    `significant`, and the sentence-level tests).

    `hypotheses` maps (regime, generation, size, seed) to that run's test translations.
    Columns: regime, generation, size, then significance.DIFFERENCE_COLUMNS.
    """
    # The significance module compares conditions with a baseline within an experiment: here
    # each regime is an "experiment" whose conditions are its generations, with generation 0 (of
    # every regime) as the baseline.
    grouped = {
        (regime, str(generation), size, run_seed): lines
        for (regime, generation, size, run_seed), lines in hypotheses.items()
        if regime != GENERATION_ZERO_REGIME
    }
    for regime in {regime for regime, *_ in grouped}:
        for (root, _, size, run_seed), lines in hypotheses.items():
            if root == GENERATION_ZERO_REGIME:
                grouped[(regime, "0", size, run_seed)] = lines
    differences = differences_to_baseline(
        references, grouped, "0", resamples=resamples, trials=trials, seed=seed
    )
    return differences.select(
        pl.col("experiment").alias("regime"),
        pl.col("condition").cast(pl.Int64).alias("generation"),
        "size",
        *DIFFERENCE_COLUMNS,
    )


def recursion_table(runs: pl.DataFrame, differences: pl.DataFrame) -> pl.DataFrame:
    """One row per regime, generation and size (and per size for the human references):
    summarise_runs joined with generation_differences, ordered by size, regime, generation."""
    table = summarise_runs(runs).join(differences, on=KEY, how="left")
    order = pl.col("regime").map_elements(regime_order, return_dtype=pl.Int64)
    return table.sort(["size", order, "generation"], nulls_last=False)
