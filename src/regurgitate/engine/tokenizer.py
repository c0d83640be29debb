"""A joint German-English SentencePiece vocabulary, shared by every model of a study."""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

import sentencepiece as spm

from regurgitate.io import atomic_path

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3

# SentencePiece's unigram trainer sums its expectations over threads, each thread's share in its
# own order, so the scores (and the model's bytes) depend on the thread count. A fixed count
# makes the tokenizer the same on every machine and under every --cores.
TRAIN_THREADS = 2


def train_tokenizer(
    sentences: Iterable[str],
    model_path: str | Path,
    *,
    vocab_size: int,
    model_type: str = "unigram",
    character_coverage: float = 1.0,
    max_sentences: int = 2_000_000,
    seed: int = 1,
) -> Path:
    """Train SentencePiece on `sentences` and write `<model_path>` and its .vocab beside it.

    The same sentences and settings give the same bytes: the model is taken from memory
    (written to a file, SentencePiece would record that file's temporary name in it), and the
    thread count is fixed (TRAIN_THREADS)."""
    model_path = Path(model_path)
    spm.set_random_generator_seed(seed)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=model,
        vocab_size=vocab_size,
        model_type=model_type,
        character_coverage=character_coverage,
        input_sentence_size=max_sentences,
        shuffle_input_sentence=True,
        num_threads=TRAIN_THREADS,
        pad_id=PAD_ID,
        unk_id=UNK_ID,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        # A small corpus may not support the requested size; fail loudly instead of shrinking.
        hard_vocab_limit=True,
        minloglevel=2,
    )
    with atomic_path(model_path.with_suffix(".vocab")) as tmp:
        tmp.write_text(vocabulary_listing(model.getvalue()), encoding="utf-8")
    with atomic_path(model_path) as tmp:
        tmp.write_bytes(model.getvalue())
    return model_path


def vocabulary_listing(model: bytes) -> str:
    """The .vocab file SentencePiece writes beside a model: each piece and its score, one per
    line, the score as C++ streams print a float (six significant digits, like %g)."""
    processor = spm.SentencePieceProcessor(model_proto=model)
    return "".join(
        f"{processor.id_to_piece(i)}\t{processor.get_score(i):g}\n"
        for i in range(processor.get_piece_size())
    )


class Tokenizer:
    def __init__(self, model_path: str | Path):
        self.path = Path(model_path)
        self.sp = spm.SentencePieceProcessor(model_file=str(self.path))
        self.pad_id, self.bos_id, self.eos_id = PAD_ID, BOS_ID, EOS_ID

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size()

    def encode(self, texts: list[str]) -> list[list[int]]:
        return self.sp.encode(texts, out_type=int)

    def decode(self, ids: list[list[int]]) -> list[str]:
        return self.sp.decode(ids)
