import pytest

from regurgitate.engine.tokenizer import BOS_ID, EOS_ID, PAD_ID, Tokenizer, train_tokenizer


def test_roundtrip_and_special_ids(toy_tokenizer):
    text = "Ein mann spielt mit dem roten ball ."
    ids = toy_tokenizer.encode([text])
    assert toy_tokenizer.decode(ids) == [text]
    assert (toy_tokenizer.pad_id, toy_tokenizer.bos_id, toy_tokenizer.eos_id) == (
        PAD_ID,
        BOS_ID,
        EOS_ID,
    )
    assert toy_tokenizer.vocab_size == 80
    assert all(i > EOS_ID for i in ids[0])


def test_training_is_deterministic(tmp_path, toy_pairs):
    sentences = [s for pair in toy_pairs for s in pair]
    a = train_tokenizer(sentences, tmp_path / "a.model", vocab_size=70, model_type="bpe")
    train_tokenizer(sentences, tmp_path / "b.model", vocab_size=70, model_type="bpe")
    # The model files record their temporary paths; the vocabularies must be identical.
    assert (tmp_path / "a.vocab").read_text() == (tmp_path / "b.vocab").read_text()
    assert Tokenizer(a).vocab_size == 70


def test_too_large_vocabulary_fails(tmp_path):
    with pytest.raises(RuntimeError, match="[Vv]ocabulary size"):
        train_tokenizer(["ab ab", "ba"] * 10, tmp_path / "x.model", vocab_size=5000)
    assert not (tmp_path / "x.model").exists()
