import pytest
import sentencepiece as spm

from regurgitate.engine.tokenizer import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    TRAIN_THREADS,
    UNK_ID,
    Tokenizer,
    train_tokenizer,
)


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


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_training_gives_the_same_bytes_anywhere(tmp_path, toy_pairs, model_type):
    """The same sentences give the same model and vocabulary files, byte for byte, in another
    folder too: no path is recorded, and the thread count is fixed."""
    sentences = [s for pair in toy_pairs for s in pair]
    a = train_tokenizer(
        sentences, tmp_path / "a" / "spm.model", vocab_size=70, model_type=model_type
    )
    b = train_tokenizer(
        sentences, tmp_path / "b" / "spm.model", vocab_size=70, model_type=model_type
    )
    assert a.read_bytes() == b.read_bytes()
    assert a.with_suffix(".vocab").read_bytes() == b.with_suffix(".vocab").read_bytes()
    assert str(tmp_path).encode() not in a.read_bytes()
    assert Tokenizer(a).vocab_size == 70
    assert sorted(p.name for p in a.parent.iterdir()) == ["spm.model", "spm.vocab"]


def test_vocabulary_file_is_the_one_sentencepiece_writes(tmp_path, toy_pairs):
    """spm.vocab is written from the model in memory exactly as SentencePiece writes it."""
    sentences = [s for pair in toy_pairs for s in pair]
    ours = train_tokenizer(sentences, tmp_path / "ours.model", vocab_size=70)
    spm.set_random_generator_seed(1)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_prefix=str(tmp_path / "theirs"),
        vocab_size=70,
        num_threads=TRAIN_THREADS,
        pad_id=PAD_ID,
        unk_id=UNK_ID,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        minloglevel=2,
    )
    assert ours.with_suffix(".vocab").read_text() == (tmp_path / "theirs.vocab").read_text()


def test_too_large_vocabulary_fails(tmp_path):
    with pytest.raises(RuntimeError, match="[Vv]ocabulary size"):
        train_tokenizer(["ab ab", "ba"] * 10, tmp_path / "x.model", vocab_size=5000)
    assert not (tmp_path / "x.model").exists()
