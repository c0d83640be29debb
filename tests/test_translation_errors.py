import pytest
from sacrebleu.metrics import CHRF

from regurgitate.analysis.translation_errors import (
    FLAGS,
    copied_source,
    corpus_ter,
    empty,
    error_profile,
    implausible_length,
    repeated_ngrams,
    sentence_chrf_scores,
)

SOURCES = [
    "Ein Mann fährt auf einem Fahrrad.",
    "Zwei Hunde spielen im Schnee auf der großen Wiese.",
    "Eine Frau liest ein Buch.",
    "Kinder spielen am Strand.",
]
REFERENCES = [
    "A man is riding a bicycle.",
    "Two dogs are playing in the snow on the big meadow.",
    "A woman is reading a book.",
    "Children are playing on the beach.",
]


# --- against the reference ---------------------------------------------------------------------


def test_sentence_chrf_scores_are_sacrebleus():
    hypotheses = ["A man rides a bike.", "Two dogs play in snow.", "", "Children on the beach."]
    chrf = CHRF()
    expected = [
        chrf.sentence_score(h, [r]).score for h, r in zip(hypotheses, REFERENCES, strict=True)
    ]
    assert sentence_chrf_scores(hypotheses, REFERENCES) == pytest.approx(expected)


def test_error_rate_counts_sentences_below_the_threshold():
    # Sentence chrF: 100 (exact), 100 (exact), 0 (empty), and in between for the partial one.
    hypotheses = [REFERENCES[0], REFERENCES[1], "", "Children on the beach."]
    partial = CHRF().sentence_score(hypotheses[3], [REFERENCES[3]]).score
    assert 0 < partial < 100

    def error_rate(threshold: float) -> float:
        return error_profile(SOURCES, hypotheses, REFERENCES, chrf_threshold=threshold)[
            "error_rate"
        ]

    assert error_rate(1.0) == pytest.approx(1 / 4)
    assert error_rate(partial + 0.01) == pytest.approx(2 / 4)
    # Strictly below: a score equal to the threshold is not an error.
    assert error_rate(partial) == pytest.approx(1 / 4)
    assert error_rate(100.01) == pytest.approx(1.0)


def test_ter_of_identical_text_is_zero_and_carries_a_signature():
    result = corpus_ter(REFERENCES, REFERENCES)
    assert result["score"] == pytest.approx(0.0)
    assert result["signature"].startswith("nrefs:1")
    assert corpus_ter(["A woman reads."] * 4, REFERENCES)["score"] > 0


def test_mismatched_lengths_name_both_lengths():
    with pytest.raises(ValueError, match="3 hypotheses, 4 references"):
        sentence_chrf_scores(REFERENCES[:3], REFERENCES)
    with pytest.raises(ValueError, match="3 hypotheses, 4 references"):
        corpus_ter(REFERENCES[:3], REFERENCES)
    with pytest.raises(ValueError, match="4 sources, 2 targets"):
        copied_source(SOURCES, REFERENCES[:2])
    with pytest.raises(ValueError, match="4 sources, 4 targets, 3 references"):
        error_profile(SOURCES, REFERENCES, REFERENCES[:3], chrf_threshold=50)


# --- reference-free flags ----------------------------------------------------------------------


def test_copied_source():
    targets = [
        "ein Mann fährt auf einem Fahrrad !",  # same once case and punctuation are gone
        "Zwei Hunde spielen im Schnee auf der großen Wiesen.",  # one word changed: chrF 97
        "A woman is reading a book.",  # a translation
        "Kinder spielen.",  # shares words with the source, but far from a copy: chrF 59
    ]
    assert copied_source(SOURCES, targets) == [True, True, False, False]


def test_implausible_length():
    sources = ["Ein Mann.", "Ein Mann fährt auf einem Fahrrad.", "Hallo", "Hallo"]
    targets = [
        "A man and a woman are riding their bicycles along the river.",  # 60 / 9 chars
        "A man.",  # 33 / 6 chars
        "Hello",  # 5 / 5
        "",  # 5 / max(0, 1)
    ]
    assert implausible_length(sources, targets) == [True, True, False, True]
    # Exactly three times as long is still plausible.
    assert implausible_length(["abc"], ["abcdefghi"]) == [False]


def test_repeated_ngrams():
    targets = [
        "a man and a man and a man and a man and a man",  # "a man and" 4 times
        "a man and a man and a man and a dog",  # "a man and" 3 times: not more than 3
        "Two dogs are playing in the snow.",
        "",
    ]
    assert repeated_ngrams(targets) == [True, False, False, False]
    assert repeated_ngrams(["the the the the the"], n=1, max_repeats=4) == [True]


def test_empty():
    assert empty(["", "   ", "\t\n", "a", " . "]) == [True, True, True, False, False]


# --- the profile -------------------------------------------------------------------------------


def test_error_profile():
    targets = [REFERENCES[0], SOURCES[1], "", "a dog a dog a dog a dog a dog"]
    profile = error_profile(SOURCES, targets, REFERENCES, chrf_threshold=50)
    assert set(profile) == {
        "error_rate",
        "ter",
        "ter_signature",
        "mean_sentence_chrf",
        "flags",
        "n",
        "sentence_chrf",
    }
    assert set(profile["flags"]) == set(FLAGS)
    assert profile["n"] == 4
    assert profile["flags"] == {
        "copied_source": 1,
        "implausible_length": 1,  # the empty target
        "repeated_ngrams": 1,
        "empty": 1,
    }
    scores = sentence_chrf_scores(targets, REFERENCES)
    assert profile["sentence_chrf"] == pytest.approx(scores)
    assert profile["mean_sentence_chrf"] == pytest.approx(sum(scores) / 4)
    assert profile["error_rate"] == pytest.approx(sum(s < 50 for s in scores) / 4)
    assert profile["ter"] == pytest.approx(corpus_ter(targets, REFERENCES)["score"])
    assert "tok:tercom" in profile["ter_signature"]
