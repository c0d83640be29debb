"""Lexical diversity of a set of target sentences (the study's M mechanisms).

The paper explains part of the loss from training on generated targets by their lower lexical
diversity. This module measures it, per set of targets (one generator's, or the human ones);
`diversity_profile` gives every measure in `MEASURES`:

- `ttr`: types / tokens.
- `mattr`: moving-average TTR over windows of 50 tokens (Covington & McFall 2010).
- `mtld`: bidirectional measure of textual lexical diversity (McCarthy & Jarvis 2010).
- `hdd`: HD-D, the hypergeometric expectation of TTR in 42-token draws (McCarthy & Jarvis 2007).
- `distinct_1`, `distinct_2`: unique n-grams / n-grams, within sentences (Li et al. 2016).
- `hapax_share`, `vocabulary`: share of types seen once, number of types.
- `compression_ratio`: gzip size / raw size of the text (lower = more repetitive).

Tokenisation: lowercase, then sacreBLEU's 13a tokenizer (the one BLEU uses), then a
whitespace split. 13a splits punctuation off words, so "house." and "house" are one type;
lowercasing keeps sentence-initial capitals from doubling types. Tokens made only of
punctuation and symbols are then dropped, because McCarthy and Jarvis define MTLD and HD-D on
words, and published values are comparable only so (`keep_punctuation=True` keeps them).
Every measure in the study sees the same tokens, so generators are compared on equal terms.

Most of these measures grow or shrink with the amount of text (TTR falls as text grows), so
`diversity_profile` first draws a seeded sample of whole sentences with a fixed number of
tokens, then measures that sample and bootstraps an interval for each measure.
"""

from __future__ import annotations

import gzip
import logging
import unicodedata
from collections.abc import Hashable, Sequence

import numpy as np
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

log = logging.getLogger(__name__)

_TOKENIZER = Tokenizer13a()
GZIP_LEVEL = 6

# Below this many tokens a text has no lexical diversity to measure: HD-D draws 42 tokens and
# MATTR's window is 50. A text that holds fewer (a collapsed model that emits nothing) gets no
# diversity values, and the others' common sample is not cut down to its size.
MIN_DIVERSITY_TOKENS = 50

MEASURES = (
    "ttr",
    "mattr",
    "mtld",
    "hdd",
    "distinct_1",
    "distinct_2",
    "vocabulary",
    "hapax_share",
    "compression_ratio",
)


def is_punctuation(token: str) -> bool:
    """A token of punctuation and symbols only ("." "--" "&"), not a word."""
    return all(unicodedata.category(char)[0] in "PS" for char in token)


def tokenize(sentence: str, keep_punctuation: bool = False) -> list[str]:
    """Lowercased 13a words of one sentence (see the module docstring for why)."""
    tokens = _TOKENIZER(sentence.lower()).split()
    return tokens if keep_punctuation else [t for t in tokens if not is_punctuation(t)]


def token_total(sentences: Sequence[str], keep_punctuation: bool = False) -> int:
    """How many tokens the sentences hold, as the diversity measures count them."""
    return sum(len(tokenize(sentence, keep_punctuation)) for sentence in sentences)


def common_sample_tokens(totals: dict[str, int], cap: int) -> int:
    """The sample size every source can give: the smallest source's token count, up to `cap`,
    so that every source is measured on the same number of tokens."""
    if not totals:
        raise ValueError("no sources to size a common sample for")
    return min(cap, *totals.values())


def diversity_sample_size(
    texts: dict[str, Sequence[str]], cap: int, keep_punctuation: bool, *, setting: str
) -> dict:
    """The tokens every diversity sample of `texts` (name -> sentences) holds: the most that
    every text has, up to `cap` (the config key `setting`, named in the warnings).

    Texts of fewer than MIN_DIVERSITY_TOKENS tokens are left out (`excluded`, sorted): they get
    no diversity values, and the others' sample is not cut down to their size. Returns
    {"sample_tokens", "cap", "totals" (tokens per text, in the order of `texts`), "excluded"}.
    """
    totals = {name: token_total(sentences, keep_punctuation) for name, sentences in texts.items()}
    excluded = sorted(name for name, total in totals.items() if total < MIN_DIVERSITY_TOKENS)
    for name in excluded:
        log.warning(
            "%s holds %d tokens, fewer than the %d a diversity measure needs: no diversity "
            "values for it",
            name,
            totals[name],
            MIN_DIVERSITY_TOKENS,
        )
    measured = {name: total for name, total in totals.items() if name not in excluded}
    sample_tokens = common_sample_tokens(measured, cap)
    if sample_tokens < cap:
        smallest = min(measured, key=measured.get)
        log.warning(
            "%s=%d capped at %d: %s holds only %d tokens, and every text is measured on the "
            "same number",
            setting,
            cap,
            sample_tokens,
            smallest,
            measured[smallest],
        )
    return {"sample_tokens": sample_tokens, "cap": cap, "totals": totals, "excluded": excluded}


# --- measures over one token list -------------------------------------------------------------


def _require_tokens(tokens: Sequence, measure: str) -> None:
    if len(tokens) == 0:
        raise ValueError(f"{measure} is undefined for an empty token list")


def _type_counts(ids: np.ndarray) -> np.ndarray:
    """How often each type occurs (types that do not occur are left out)."""
    counts = np.bincount(ids)
    return counts[counts > 0]


def _hapax_share_of_counts(counts: np.ndarray) -> float:
    return float(np.count_nonzero(counts == 1) / len(counts))


def _previous_occurrence(ids: np.ndarray) -> np.ndarray:
    """For each position, the position of the previous occurrence of the same token, or -1."""
    order = np.argsort(ids, kind="stable")  # stable: positions of one type stay in text order
    previous = np.full(len(ids), -1, dtype=np.int64)
    same_type = ids[order[1:]] == ids[order[:-1]]
    previous[order[1:][same_type]] = order[:-1][same_type]
    return previous


def _mattr_of_ids(ids: np.ndarray, window: int) -> float:
    n = len(ids)
    if n < window:
        return len(_type_counts(ids)) / n
    # A Python loop over windows is too slow for the bootstrap (hundreds of rounds), so count
    # without one. The window starting at s holds as many types as it holds tokens seen there
    # for the first time: positions i in [s, s + window) whose previous occurrence is before
    # s. So token i adds one type to every window start s in
    # [max(previous[i] + 1, i - window + 1), min(i, n - window)], and summing the lengths of
    # these ranges gives the sum of the types over all windows.
    positions = np.arange(n)
    first_start = np.maximum(_previous_occurrence(ids) + 1, positions - window + 1)
    last_start = np.minimum(positions, n - window)
    type_total = np.clip(last_start - first_start + 1, 0, None).sum()
    n_windows = n - window + 1
    return float(type_total / (window * n_windows))


def mtld(tokens: Sequence[Hashable], threshold: float = 0.72) -> float:
    """Bidirectional MTLD (McCarthy & Jarvis 2010): mean length of a run of tokens whose TTR
    stays above `threshold`, averaged over reading forward and backward.

    Reading on, a factor ends when the running TTR drops to the threshold or below; the
    leftover run at the end counts as a partial factor, (1 - its TTR) / (1 - threshold).
    A text with no repeated token never completes a factor, and counts as one factor.
    """
    _require_tokens(tokens, "MTLD")
    forward = len(tokens) / _mtld_factors(tokens, threshold)
    backward = len(tokens) / _mtld_factors(tokens[::-1], threshold)
    return (forward + backward) / 2


def _mtld_factors(tokens: Sequence[Hashable], threshold: float) -> float:
    factors = 0.0
    types: set[Hashable] = set()
    run_length = 0
    for token in tokens:
        run_length += 1
        types.add(token)
        if len(types) / run_length <= threshold:
            factors += 1
            types = set()
            run_length = 0
    if run_length > 0:
        factors += (1 - len(types) / run_length) / (1 - threshold)
    # Only an all-distinct text ends with no factor at all: it is one factor long.
    return factors if factors > 0 else 1.0


def _hdd_of_counts(counts: np.ndarray, sample_size: int) -> float:
    n_tokens = int(counts.sum())
    if n_tokens < sample_size:
        raise ValueError(f"HD-D draws {sample_size} tokens but the text has only {n_tokens} tokens")
    distinct_counts, n_types = np.unique(counts, return_counts=True)
    p_absent = _p_none_drawn(n_tokens, distinct_counts, sample_size)
    return float(np.sum(n_types * (1 - p_absent)) / sample_size)


def _p_none_drawn(n_tokens: int, counts: np.ndarray, draws: int) -> np.ndarray:
    """Hypergeometric P(0): the chance that `draws` tokens drawn without replacement from
    `n_tokens` miss all `count` occurrences of a type, for each count in `counts`.

    This is scipy.stats.hypergeom.pmf(0, n_tokens, counts, draws) written out as the product
    over draws of (tokens left that are not the type) / (tokens left). scipy's pmf takes about
    0.1 ms per count at tens of thousands of tokens, too slow for a bootstrap of hundreds of
    rounds; the product is exact to rounding (the tests compare the two).
    """
    draw = np.arange(draws)
    # Clipping at zero: once fewer tokens are left than other draws to make, one is certain
    # to hit the type, and the chance of missing it is 0.
    misses = np.clip(n_tokens - counts[:, None] - draw, 0, None)
    return np.prod(misses / (n_tokens - draw), axis=1)


def _ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    if n < 1:
        raise ValueError(f"n-grams need n >= 1, got {n}")
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def compression_ratio(sentences: Sequence[str]) -> float:
    """gzip size / raw size of the newline-joined UTF-8 text; lower means more repetitive.

    Level 6 is the gzip command's default (Python's is 9): it gives nearly the same ratio
    (0.320 against 0.317 on 5,000 Multi30k captions) in 60% of the time, which matters in
    the bootstrap. mtime=0 keeps the gzip header, and so the ratio, the same on every run.
    gzip only sees repeats within 32 KiB of each other, so this measures local repetition.
    """
    raw = "\n".join(sentences).encode("utf-8")
    if not raw:
        raise ValueError("the compression ratio is undefined for empty text")
    return len(gzip.compress(raw, compresslevel=GZIP_LEVEL, mtime=0)) / len(raw)


# --- a profile of a set of sentences: sampled to a fixed size, with bootstrap intervals -------


def sample_by_tokens(
    token_counts: Sequence[int], sample_tokens: int | None, rng: np.random.Generator
) -> np.ndarray:
    """Indices of a random sample of whole sentences holding at least `sample_tokens` tokens.

    Sentences are shuffled, then taken in that order until `sample_tokens` is reached, so the
    sample overshoots by less than one sentence. None takes every sentence (shuffled).
    """
    order = rng.permutation(len(token_counts))
    if sample_tokens is None:
        return order
    total = int(np.sum(token_counts))
    if total < sample_tokens:
        raise ValueError(
            f"cannot sample {sample_tokens} tokens: the sentences hold only {total} tokens"
        )
    cumulative = np.cumsum(np.asarray(token_counts)[order])
    n_taken = int(np.searchsorted(cumulative, sample_tokens)) + 1
    return order[:n_taken]


class _EncodedSentences:
    """Sentences as integer token and bigram ids, so that each bootstrap round only gathers
    and counts arrays instead of tokenising and hashing strings again."""

    def __init__(self, sentences: Sequence[str], tokens: Sequence[Sequence[str]]):
        self.sentences = list(sentences)
        token_index: dict[str, int] = {}
        bigram_index: dict[tuple[str, str], int] = {}
        self.token_ids = [
            np.array([token_index.setdefault(t, len(token_index)) for t in sentence], np.int64)
            for sentence in tokens
        ]
        self.bigram_ids = [
            np.array(
                [bigram_index.setdefault(b, len(bigram_index)) for b in _ngrams(sentence, 2)],
                np.int64,
            )
            for sentence in tokens
        ]

    def measures(self, picks: Sequence[int]) -> dict[str, float]:
        """Every measure of the text made of the sentences at `picks`, in that order."""
        ids = np.concatenate([self.token_ids[i] for i in picks])
        bigrams = np.concatenate([self.bigram_ids[i] for i in picks])
        _require_tokens(ids, "lexical diversity")
        if len(bigrams) == 0:
            raise ValueError("distinct-2 is undefined: no sentence has 2 tokens")
        counts = _type_counts(ids)
        return {
            "ttr": len(counts) / len(ids),
            "mattr": _mattr_of_ids(ids, window=50),
            "mtld": mtld(ids.tolist()),
            "hdd": _hdd_of_counts(counts, sample_size=42),
            # Unigrams never span a sentence boundary, so distinct-1 is the TTR; it is kept
            # as its own row because papers report distinct-1 and distinct-2 side by side.
            "distinct_1": len(counts) / len(ids),
            "distinct_2": len(_type_counts(bigrams)) / len(bigrams),
            "vocabulary": float(len(counts)),
            "hapax_share": _hapax_share_of_counts(counts),
            "compression_ratio": compression_ratio([self.sentences[i] for i in picks]),
        }


def diversity_profile(
    sentences: Sequence[str],
    *,
    sample_tokens: int | None,
    seed: int,
    bootstrap: int = 200,
    confidence: float = 0.95,
    keep_punctuation: bool = False,
) -> dict[str, dict[str, float]]:
    """Every diversity measure of a seeded sample of `sample_tokens` tokens of `sentences`.

    Returns {measure: {"value", "ci_low", "ci_high"}} for the measures in `MEASURES`.
    `sample_tokens=None` measures all sentences. The interval comes from `bootstrap`
    resamples of the sample's sentences with replacement; see `_recentred_interval` for why
    it is centred on the value. The same seed gives the same sample and the same interval.
    """
    if not sentences:
        raise ValueError("cannot profile the diversity of no sentences")
    if sample_tokens is not None and sample_tokens < 1:
        raise ValueError(f"sample_tokens must be at least 1 (or None for all), got {sample_tokens}")
    if bootstrap < 1:
        raise ValueError(f"bootstrap must be at least 1 round, got {bootstrap}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    rng = np.random.default_rng(seed)
    tokens = [tokenize(sentence, keep_punctuation) for sentence in sentences]
    picked = sample_by_tokens([len(t) for t in tokens], sample_tokens, rng)
    sample = _EncodedSentences([sentences[i] for i in picked], [tokens[i] for i in picked])
    n_sentences = len(picked)
    values = sample.measures(range(n_sentences))
    resamples = [
        sample.measures(rng.integers(0, n_sentences, size=n_sentences)) for _ in range(bootstrap)
    ]
    profile = {}
    for measure in MEASURES:
        replicates = np.array([resample[measure] for resample in resamples])
        low, high = _recentred_interval(values[measure], replicates, confidence)
        profile[measure] = {"value": float(values[measure]), "ci_low": low, "ci_high": high}
    return profile


def profile_values(profile: dict | None, measure: str) -> dict:
    """One measure of a diversity_profile, {"value", "ci_low", "ci_high"}: all None where a
    text has no profile (fewer than MIN_DIVERSITY_TOKENS tokens)."""
    if profile is None:
        return {"value": None, "ci_low": None, "ci_high": None}
    return profile[measure]


def _recentred_interval(
    value: float, replicates: np.ndarray, confidence: float
) -> tuple[float, float]:
    """Percentile interval of the bootstrap replicates, moved so that their median is `value`.

    A resample with replacement repeats about a third of its sentences, and repeats add
    tokens but no types: on 5,000 Multi30k captions the resamples' TTR is 0.055 against the
    sample's 0.069, vocabulary 3,525 against 4,421, and the plain percentile interval lies
    far below the value. That drop comes from the resampling, not from the data, so the
    resamples only tell how wide the interval is. For measures the repeats do not move
    (HD-D, MATTR, MTLD) the shift is close to zero and this is the plain percentile interval.
    """
    tail = (1 - confidence) / 2
    low, median, high = np.quantile(replicates, [tail, 0.5, 1 - tail])
    shift = value - median
    return float(low + shift), float(high + shift)
