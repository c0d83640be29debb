"""Jobs of workflow/rules/data.smk: download the corpus, carve the pools, train the tokenizer."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from regurgitate.engine.tokenizer import train_tokenizer as train_sentencepiece
from regurgitate.study.corpus import CleaningConfig, prepare
from regurgitate.study.download import download

log = logging.getLogger(__name__)


def download_corpus(*, url: str, out: Path, sha256: str | None) -> Path:
    return download(url, out, sha256)


def prepare_pools(
    *,
    corpus: dict,
    cleaning: dict,
    sizes: dict,
    seed: int,
    out_dir: Path,
    report_path: Path,
    archive: Path | None,
    parallel: Sequence[Path] = (),
) -> dict:
    """Read, clean and split the corpus into the pools and the cleaning report.

    `archive` is a europarl corpus's download, `parallel` a multi30k corpus's files
    (`<split>.<lang>.gz`, found by their names).
    """
    return prepare(
        corpus=corpus,
        cleaning=CleaningConfig(**cleaning),
        sizes=sizes,
        seed=seed,
        out_dir=out_dir,
        report_path=report_path,
        archive=archive,
        files={Path(path).name: Path(path) for path in parallel},
    )


def train_tokenizer(*, teacher_path: Path, model_out: Path, settings: dict, seed: int) -> Path:
    """The joint SentencePiece model, trained on both sides of the teacher pool (with a fixed
    thread count whatever the job was granted: the model's scores depend on it)."""
    teacher = pl.read_parquet(teacher_path)
    sentences = teacher["source"].to_list() + teacher["target"].to_list()
    log.info("training SentencePiece on %d sentences: %s", len(sentences), settings)
    return train_sentencepiece(
        sentences,
        model_out,
        vocab_size=settings["vocab_size"],
        model_type=settings["model_type"],
        max_sentences=settings["max_sentences"],
        seed=seed,
    )
