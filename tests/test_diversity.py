import gzip
import math
import random

import numpy as np
import pytest
from scipy.stats import hypergeom

from regurgitate.analysis.diversity import (
    MEASURES,
    compression_ratio,
    distinct_n,
    diversity_profile,
    hapax_share,
    hdd,
    mattr,
    mtld,
    sample_by_tokens,
    tokenize,
    ttr,
    vocabulary_size,
)


def varied_sentences(n_sentences: int, seed: int = 0, n_words: int = 400) -> list[str]:
    """Sentences of 6-14 words drawn from `n_words` made-up words, some with punctuation."""
    rng = random.Random(seed)
    words = [f"w{index}" for index in range(n_words)]
    return [
        " ".join(rng.choice(words) for _ in range(rng.randint(6, 14))) + rng.choice([".", "!", ""])
        for _ in range(n_sentences)
    ]


def repeated_sentences(n_sentences: int) -> list[str]:
    return ["the man is riding a horse on the beach ."] * n_sentences


def flat_tokens(sentences: list[str]) -> list[str]:
    return [token for sentence in sentences for token in tokenize(sentence)]


# --- tokenisation ------------------------------------------------------------------------------


def test_tokenize_lowercases_and_splits_punctuation():
    assert tokenize("The house, the HOUSE.") == ["the", "house", ",", "the", "house", "."]


# --- single measures, worked by hand -----------------------------------------------------------


def test_ttr_vocabulary_and_hapax_share():
    tokens = ["the", "cat", "saw", "the", "dog"]
    assert ttr(tokens) == pytest.approx(4 / 5)
    assert vocabulary_size(tokens) == 4
    # "cat", "saw", "dog" occur once, "the" twice: 3 of 4 types are hapaxes.
    assert hapax_share(tokens) == pytest.approx(3 / 4)


def test_empty_token_list_is_an_error():
    for measure in (ttr, mattr, mtld, hdd, hapax_share):
        with pytest.raises(ValueError, match="empty"):
            measure([])


def test_mattr_window_3_by_hand():
    # Windows of 3 over a b a c c: (a b a) 2 types, (b a c) 3, (a c c) 2 -> (2 + 3 + 2) / 9.
    assert mattr(["a", "b", "a", "c", "c"], window=3) == pytest.approx(7 / 9)


def test_mattr_falls_back_to_ttr_below_one_window():
    tokens = ["a", "b", "a", "c", "c"]
    assert mattr(tokens, window=10) == pytest.approx(ttr(tokens))


def test_mattr_matches_a_direct_loop_over_windows():
    rng = random.Random(1)
    tokens = [rng.choice("abcdefghij") for _ in range(300)]
    window = 25
    direct = [len(set(tokens[i : i + window])) / window for i in range(len(tokens) - window + 1)]
    assert mattr(tokens, window) == pytest.approx(sum(direct) / len(direct))


def test_mtld_by_hand():
    tokens = ["a", "b", "a", "c", "d", "a", "a"]
    # Forward, threshold 0.72:
    #   a (1/1) b (2/2) a (2/3 = 0.67 <= 0.72): one factor, start again;
    #   c (1/1) d (2/2) a (3/3) a (3/4 = 0.75): end of text, partial factor
    #   (1 - 0.75) / (1 - 0.72) = 25/28. Factors 53/28, so 7 / (53/28) = 196/53 tokens each.
    # Backward over a a d c a b a:
    #   a (1/1) a (1/2 = 0.5): one factor, start again;
    #   d c a b (4/4) a (4/5 = 0.8): partial (1 - 0.8) / 0.28 = 5/7. Factors 12/7, so 49/12.
    assert mtld(tokens) == pytest.approx((196 / 53 + 49 / 12) / 2)


def test_mtld_of_all_distinct_tokens_is_their_number():
    # No factor is ever completed and the leftover TTR is 1: the text counts as one factor.
    assert mtld(["a", "b", "c", "d"]) == pytest.approx(4.0)


def test_hdd_by_hand_with_draws_of_3():
    # a a b c, draws of 3 from 4 tokens. P(no "a") = C(2,3)/C(4,3) = 0, P(no "b") = P(no "c")
    # = C(3,3)/C(4,3) = 1/4. HD-D = (1 + 3/4 + 3/4) / 3.
    assert hdd(["a", "a", "b", "c"], sample_size=3) == pytest.approx((1 + 0.75 + 0.75) / 3)


def test_hdd_matches_the_hypergeometric_formula():
    tokens = flat_tokens(varied_sentences(40))
    n_tokens, draws = len(tokens), 42
    counts = {token: tokens.count(token) for token in set(tokens)}
    with_comb = sum(
        (1 - math.comb(n_tokens - count, draws) / math.comb(n_tokens, draws)) / draws
        for count in counts.values()
    )
    with_scipy = sum(
        (1 - hypergeom.pmf(0, n_tokens, count, draws)) / draws for count in counts.values()
    )
    assert hdd(tokens) == pytest.approx(with_comb, rel=1e-12)
    assert hdd(tokens) == pytest.approx(with_scipy, rel=1e-9)


def test_hdd_needs_as_many_tokens_as_draws():
    with pytest.raises(ValueError, match="42 tokens.*only 5 tokens"):
        hdd(["a", "b", "c", "d", "e"])


def test_distinct_n_stays_within_sentences():
    sentences = [["a", "b", "a"], ["b", "a"]]
    # Bigrams (a b) (b a) | (b a): the pair "a b" across the boundary does not count.
    assert distinct_n(sentences, 2) == pytest.approx(2 / 3)
    assert distinct_n(sentences, 1) == pytest.approx(2 / 5)


def test_distinct_n_without_any_ngram_is_an_error():
    with pytest.raises(ValueError, match="distinct-3"):
        distinct_n([["a", "b"], ["c"]], 3)


def test_compression_ratio_is_gzip_size_over_raw_size_and_stable():
    sentences = ["a man rides a horse", "two dogs play in the snow"]
    raw = "\n".join(sentences).encode("utf-8")
    expected = len(gzip.compress(raw, compresslevel=6, mtime=0)) / len(raw)
    assert compression_ratio(sentences) == pytest.approx(expected)
    assert compression_ratio(sentences) == compression_ratio(sentences)


# --- properties --------------------------------------------------------------------------------


def test_repetition_lowers_every_measure():
    varied = varied_sentences(60)
    repeated = repeated_sentences(60)
    varied_tokens, repeated_tokens = flat_tokens(varied), flat_tokens(repeated)
    assert ttr(repeated_tokens) < ttr(varied_tokens)
    assert mattr(repeated_tokens) < mattr(varied_tokens)
    assert mtld(repeated_tokens) < mtld(varied_tokens)
    assert hdd(repeated_tokens) < hdd(varied_tokens)
    for n in (1, 2):
        assert distinct_n([tokenize(s) for s in repeated], n) < distinct_n(
            [tokenize(s) for s in varied], n
        )
    assert compression_ratio(repeated) < compression_ratio(varied)


def test_against_lexicalrichness():
    lexicalrichness = pytest.importorskip("lexicalrichness")
    # A small vocabulary, so that MTLD completes many factors in both directions.
    tokens = flat_tokens(varied_sentences(40, seed=3, n_words=60))
    assert len(tokens) > 300
    reference = lexicalrichness.LexicalRichness(tokens, preprocessor=None, tokenizer=None)
    assert mtld(tokens) == pytest.approx(reference.mtld(threshold=0.72))
    assert hdd(tokens) == pytest.approx(reference.hdd(draws=42))
    assert mattr(tokens, window=100) == pytest.approx(reference.mattr(window_size=100))


# --- sampling and the profile ------------------------------------------------------------------


def test_sample_reaches_the_token_count_within_one_sentence():
    token_counts = [len(tokenize(s)) for s in varied_sentences(200)]
    picked = sample_by_tokens(token_counts, 500, np.random.default_rng(0))
    sampled = sum(token_counts[i] for i in picked)
    assert 500 <= sampled < 500 + token_counts[picked[-1]]
    assert len(set(picked.tolist())) == len(picked)  # whole sentences, none twice


def test_sample_of_more_tokens_than_there_are_is_an_error_naming_both():
    with pytest.raises(ValueError, match=r"1000 tokens.*only 12 tokens"):
        diversity_profile(["one two three four five six"] * 2, sample_tokens=1000, seed=0)


def test_profile_is_deterministic_for_a_seed():
    sentences = varied_sentences(150)
    first = diversity_profile(sentences, sample_tokens=800, seed=7, bootstrap=20)
    again = diversity_profile(sentences, sample_tokens=800, seed=7, bootstrap=20)
    other = diversity_profile(sentences, sample_tokens=800, seed=8, bootstrap=20)
    assert first == again
    assert first != other


def test_profile_has_every_measure_with_an_interval_around_the_value():
    profile = diversity_profile(varied_sentences(150), sample_tokens=1000, seed=0, bootstrap=50)
    assert set(profile) == set(MEASURES)
    for measure, result in profile.items():
        assert set(result) == {"value", "ci_low", "ci_high"}
        assert result["ci_low"] <= result["value"] <= result["ci_high"], measure
        assert result["ci_low"] < result["ci_high"], measure


def test_profile_of_all_sentences_equals_the_single_measures():
    sentences = varied_sentences(80)
    profile = diversity_profile(sentences, sample_tokens=None, seed=4, bootstrap=5)
    # The profile reads the sentences in a seeded shuffle; order-dependent measures need it too.
    order = np.random.default_rng(4).permutation(len(sentences))
    shuffled = [sentences[i] for i in order]
    tokens = flat_tokens(shuffled)
    sentence_tokens = [tokenize(s) for s in shuffled]
    expected = {
        "ttr": ttr(tokens),
        "mattr": mattr(tokens),
        "mtld": mtld(tokens),
        "hdd": hdd(tokens),
        "distinct_1": distinct_n(sentence_tokens, 1),
        "distinct_2": distinct_n(sentence_tokens, 2),
        "vocabulary": vocabulary_size(tokens),
        "hapax_share": hapax_share(tokens),
        "compression_ratio": compression_ratio(shuffled),
    }
    for measure, value in expected.items():
        assert profile[measure]["value"] == pytest.approx(value), measure


def test_profile_ranks_repetitive_text_below_varied_text():
    varied = diversity_profile(varied_sentences(150), sample_tokens=800, seed=0, bootstrap=20)
    mixed = varied_sentences(75) + repeated_sentences(75)
    repetitive = diversity_profile(mixed, sample_tokens=800, seed=0, bootstrap=20)
    for measure in ("ttr", "mtld", "distinct_2", "compression_ratio"):
        assert repetitive[measure]["ci_high"] < varied[measure]["ci_low"], measure


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"sample_tokens": 0}, "sample_tokens"),
        ({"sample_tokens": None, "bootstrap": 0}, "bootstrap"),
        ({"sample_tokens": None, "confidence": 1.0}, "confidence"),
    ],
)
def test_profile_rejects_bad_settings(arguments, message):
    with pytest.raises(ValueError, match=message):
        diversity_profile(varied_sentences(10), seed=0, **arguments)
