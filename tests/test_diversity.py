import gzip
import math
import random
from collections import Counter

import numpy as np
import pytest
from scipy.stats import hypergeom

from regurgitate.analysis.diversity import (
    MEASURES,
    MIN_DIVERSITY_TOKENS,
    common_sample_tokens,
    compression_ratio,
    diversity_profile,
    diversity_sample_size,
    mtld,
    sample_by_tokens,
    token_total,
    tokenize,
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


def test_tokenize_lowercases_and_keeps_words_only():
    assert tokenize("The house, the HOUSE.") == ["the", "house", "the", "house"]
    assert tokenize("A man -- 3 dogs & a cat's toy!") == [
        "a",
        "man",
        "3",
        "dogs",
        "a",
        "cat's",
        "toy",
    ]
    assert tokenize("The house, the HOUSE.", keep_punctuation=True) == [
        "the",
        "house",
        ",",
        "the",
        "house",
        ".",
    ]


def test_punctuation_does_not_count_towards_mtld():
    words = varied_sentences(30, seed=2)
    words = [" ".join(w for w in s.split() if w.isalnum()) for s in words]
    punctuated = [f"{s} ." for s in words]
    profile = diversity_profile(punctuated, sample_tokens=None, seed=1, bootstrap=2)
    with_dots = diversity_profile(
        punctuated, sample_tokens=None, seed=1, bootstrap=2, keep_punctuation=True
    )
    plain = diversity_profile(words, sample_tokens=None, seed=1, bootstrap=2)
    assert profile["mtld"]["value"] == plain["mtld"]["value"]
    assert with_dots["vocabulary"]["value"] == plain["vocabulary"]["value"] + 1


def test_common_sample_is_the_smallest_source_up_to_the_cap():
    assert common_sample_tokens({"human": 900, "weak": 480, "strong": 700}, cap=600) == 480
    assert common_sample_tokens({"human": 900, "weak": 800}, cap=600) == 600
    assert token_total(["The house, the HOUSE.", "a cat"]) == 6


def test_sample_size_leaves_out_texts_too_small_to_measure(caplog):
    """The common size is the smallest total up to the cap; a text under MIN_DIVERSITY_TOKENS
    gets none and does not cut the others' size down to its own."""
    texts = {
        "human": ["a b c d e"] * 40,  # 200 tokens
        "weak": ["a b c d e"] * 24,  # 120
        "empty": ["a b ."] * 10,  # 20: "." is no word
    }
    assert MIN_DIVERSITY_TOKENS == 50
    with caplog.at_level("WARNING"):
        record = diversity_sample_size(texts, 150, False, setting="mechanisms.sample_tokens")
    assert list(record) == ["sample_tokens", "cap", "totals", "excluded"]
    assert record == {
        "sample_tokens": 120,
        "cap": 150,
        "totals": {"human": 200, "weak": 120, "empty": 20},
        "excluded": ["empty"],
    }
    assert "empty holds 20 tokens" in caplog.text
    assert "mechanisms.sample_tokens=150 capped at 120: weak holds only 120" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        uncapped = diversity_sample_size(texts, 100, False, setting="recursion.sample_tokens")
    assert uncapped["sample_tokens"] == 100 and uncapped["excluded"] == ["empty"]
    assert "capped" not in caplog.text
    # Exactly MIN_DIVERSITY_TOKENS is enough; punctuation counts only where it is kept.
    edge = {"human": texts["human"], "border": ["a b c d e"] * 10, "dots": ["a b c d ."] * 12}
    words_only = diversity_sample_size(edge, 1000, False, setting="mechanisms.sample_tokens")
    assert words_only["excluded"] == ["dots"] and words_only["sample_tokens"] == 50
    with_dots = diversity_sample_size(edge, 1000, True, setting="mechanisms.sample_tokens")
    assert with_dots["excluded"] == [] and with_dots["totals"]["dots"] == 60


# --- single measures, worked by hand -----------------------------------------------------------


def measured(sentences: list[str]) -> dict[str, float]:
    """Every measure of all of `sentences` (the profile's values, without sampling); HD-D
    needs at least 42 tokens, so the cases worked by hand below have that many."""
    profile = diversity_profile(sentences, sample_tokens=None, seed=0, bootstrap=1)
    return {measure: result["value"] for measure, result in profile.items()}


def test_ttr_vocabulary_and_hapax_share():
    # 42 tokens of 40 types: w0 and w1 occur twice, the other 38 types once.
    values = measured([" ".join(f"w{i}" for i in [*range(40), 0, 1])])
    assert values["ttr"] == pytest.approx(40 / 42)
    assert values["distinct_1"] == pytest.approx(40 / 42)
    assert values["vocabulary"] == 40
    assert values["hapax_share"] == pytest.approx(38 / 40)


def test_no_tokens_is_an_error():
    with pytest.raises(ValueError, match="empty token list"):
        diversity_profile(["", " "], sample_tokens=None, seed=0)
    for measure in (mtld, compression_ratio):
        with pytest.raises(ValueError, match="empty"):
            measure([])


def test_mattr_falls_back_to_ttr_below_one_window():
    # 45 tokens, fewer than a window of 50: MATTR is the TTR, 9 types / 45 tokens.
    values = measured([" ".join("abcdefghi" * 5)])
    assert values["mattr"] == pytest.approx(9 / 45)
    assert values["ttr"] == pytest.approx(9 / 45)


def test_mattr_matches_a_direct_loop_over_windows():
    rng = random.Random(1)
    tokens = [rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(300)]
    window = 50
    direct = [len(set(tokens[i : i + window])) / window for i in range(len(tokens) - window + 1)]
    # One sentence: the profile's shuffle of sentences leaves the token order alone.
    assert measured([" ".join(tokens)])["mattr"] == pytest.approx(sum(direct) / len(direct))


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


def test_hdd_matches_the_hypergeometric_formula():
    sentences = varied_sentences(40)
    tokens = flat_tokens(sentences)
    n_tokens, draws = len(tokens), 42
    counts = {token: tokens.count(token) for token in set(tokens)}
    with_comb = sum(
        (1 - math.comb(n_tokens - count, draws) / math.comb(n_tokens, draws)) / draws
        for count in counts.values()
    )
    with_scipy = sum(
        (1 - hypergeom.pmf(0, n_tokens, count, draws)) / draws for count in counts.values()
    )
    assert with_comb == pytest.approx(with_scipy, rel=1e-9)
    assert measured(sentences)["hdd"] == pytest.approx(with_comb, rel=1e-12)


def test_hdd_by_hand_when_a_type_is_sure_to_be_drawn():
    # 41 tokens of "a" and one each of "b" and "c": a draw of 42 from 43 tokens always holds
    # "a" and misses "b" (or "c") with chance 1/43. HD-D = (1 + 2 * 42/43) / 42.
    values = measured(["a " * 41 + "b c"])
    assert values["hdd"] == pytest.approx((1 + 2 * 42 / 43) / 42)


def test_hdd_needs_as_many_tokens_as_draws():
    with pytest.raises(ValueError, match="42 tokens.*only 5 tokens"):
        measured(["a b c d e"])


def test_distinct_2_stays_within_sentences():
    # 14 sentences "a b a": bigrams (a b) (b a) in each, 2 types of 28. Across a boundary
    # there would be "a a" too, and 41 bigrams.
    values = measured(["a b a"] * 14)
    assert values["distinct_2"] == pytest.approx(2 / 28)
    assert values["distinct_1"] == pytest.approx(2 / 42)


def test_distinct_2_without_any_bigram_is_an_error():
    with pytest.raises(ValueError, match="distinct-2"):
        measured(["a"] * 42)


def test_compression_ratio_is_gzip_size_over_raw_size_and_stable():
    sentences = ["a man rides a horse", "two dogs play in the snow"]
    raw = "\n".join(sentences).encode("utf-8")
    expected = len(gzip.compress(raw, compresslevel=6, mtime=0)) / len(raw)
    assert compression_ratio(sentences) == pytest.approx(expected)
    assert compression_ratio(sentences) == compression_ratio(sentences)


# --- properties --------------------------------------------------------------------------------


def test_repetition_lowers_every_measure():
    varied, repeated = measured(varied_sentences(60)), measured(repeated_sentences(60))
    for measure in MEASURES:
        assert repeated[measure] < varied[measure], measure


def test_against_lexicalrichness():
    lexicalrichness = pytest.importorskip("lexicalrichness")
    # A small vocabulary, so that MTLD completes many factors in both directions.
    tokens = flat_tokens(varied_sentences(40, seed=3, n_words=60))
    assert len(tokens) > 300
    reference = lexicalrichness.LexicalRichness(tokens, preprocessor=None, tokenizer=None)
    values = measured([" ".join(tokens)])  # one sentence: the profile keeps the token order
    assert values["mtld"] == pytest.approx(reference.mtld(threshold=0.72))
    assert values["hdd"] == pytest.approx(reference.hdd(draws=42))
    assert values["mattr"] == pytest.approx(reference.mattr(window_size=50))


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


def test_profile_of_all_sentences_equals_the_measures_spelled_out():
    """The profile's array code against each measure's definition, written plainly."""
    sentences = varied_sentences(80)
    profile = diversity_profile(sentences, sample_tokens=None, seed=4, bootstrap=5)
    # The profile reads the sentences in a seeded shuffle; order-dependent measures need it too.
    order = np.random.default_rng(4).permutation(len(sentences))
    shuffled = [sentences[i] for i in order]
    tokens = flat_tokens(shuffled)
    counts = Counter(tokens)
    windows = [tokens[i : i + 50] for i in range(len(tokens) - 49)]
    bigrams = [
        tuple(sentence[i : i + 2])
        for sentence in map(tokenize, shuffled)
        for i in range(len(sentence) - 1)
    ]
    n, draws = len(tokens), 42
    expected = {
        "ttr": len(counts) / n,
        "mattr": sum(len(set(w)) / 50 for w in windows) / len(windows),
        "mtld": mtld(tokens),  # worked by hand above
        "hdd": sum(1 - math.comb(n - c, draws) / math.comb(n, draws) for c in counts.values())
        / draws,
        "distinct_1": len(counts) / n,
        "distinct_2": len(set(bigrams)) / len(bigrams),
        "vocabulary": len(counts),
        "hapax_share": sum(c == 1 for c in counts.values()) / len(counts),
        "compression_ratio": compression_ratio(shuffled),  # worked by hand above
    }
    assert set(expected) == set(MEASURES)
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
