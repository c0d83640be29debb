import pytest
import sacrebleu

from regurgitate.engine.metrics import score, sentence_chrf

HYPOTHESES = [
    "the cat sat on the mat",
    "there is a dog in the garden today",
    "he reads a book",
]
REFERENCES = [
    "the cat sat on the mat",
    "a dog is in the garden today",
    "he is reading a book",
]


def test_perfect_match_scores_100():
    sentences = ["the parliament adopted the resolution today", "we thank the rapporteur"]
    result = score(sentences, sentences)
    assert result["bleu"] == pytest.approx(100.0)
    assert result["chrf"] == pytest.approx(100.0)
    assert result["n_sentences"] == 2


def test_matches_sacrebleu_corpus_functions():
    result = score(HYPOTHESES, REFERENCES)
    assert result["bleu"] == pytest.approx(sacrebleu.corpus_bleu(HYPOTHESES, [REFERENCES]).score)
    assert result["chrf"] == pytest.approx(sacrebleu.corpus_chrf(HYPOTHESES, [REFERENCES]).score)
    assert 0 < result["bleu"] < 100
    assert 0 < result["chrf"] < 100


def test_signatures_record_settings():
    result = score(HYPOTHESES, REFERENCES)
    for key in ("bleu_signature", "chrf_signature"):
        assert "nrefs:1" in result[key]
        assert f"version:{sacrebleu.__version__}" in result[key]
    assert "tok:13a" in result["bleu_signature"]


def test_length_mismatch_raises():
    with pytest.raises(ValueError, match="differ in length"):
        score(HYPOTHESES, REFERENCES[:2])


def test_empty_raises():
    with pytest.raises(ValueError, match="empty"):
        score([], [])


def test_sentence_chrf_per_pair():
    scores = sentence_chrf(HYPOTHESES, REFERENCES)
    # each pair scored on its own: sacreBLEU's sentence chrF of that pair, not a corpus score
    expected = [
        sacrebleu.sentence_chrf(h, [r]).score for h, r in zip(HYPOTHESES, REFERENCES, strict=True)
    ]
    assert scores == pytest.approx(expected)
    assert scores[0] == pytest.approx(100.0)
    assert scores[1] != pytest.approx(scores[2])
    assert sentence_chrf(HYPOTHESES[::-1], REFERENCES[::-1]) == pytest.approx(expected[::-1])
    with pytest.raises(ValueError, match="differ in length"):
        sentence_chrf(HYPOTHESES, REFERENCES[:1])
