"""Jobs of workflow/rules/data.smk: download the corpus, carve the pools, train the tokenizer."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from regurgitate.engine.tokenizer import Tokenizer
from regurgitate.engine.tokenizer import train_tokenizer as train_sentencepiece
from regurgitate.io import read_json, write_json
from regurgitate.study.config import ConfigError, PoolDemand, check_pool_demands
from regurgitate.study.corpus import CleaningConfig, prepare
from regurgitate.study.corpus_files import record_contents
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
        request={"corpus": corpus, "cleaning": cleaning, "pools": sizes, "seed": seed},
    )


def record_corpus_contents(*, corpus: dict, record: Path, cache: Path) -> None:
    record_contents(corpus, Path(record), Path(cache))


# A pool with more of its pairs cut than this is refused: what the mechanisms measure (length,
# diversity) would be the cut text's.
MAX_TRUNCATED_SHARE = 0.01


def check_pools(
    *,
    report_path: Path,
    pool_paths: Sequence[Path],
    tokenizer_path: Path,
    demands: Sequence[dict],
    null_pools: Sequence[str],
    max_positions: dict[str, int],
    out: Path,
) -> dict:
    """Right after the pools and the tokenizer are made: the sizes the config asks of the
    pools (`demands`, from study.config.pool_demands) against what they hold, and the pairs
    each architecture (name -> max_positions) would cut. Writes the counts to `out`."""
    pools = read_json(report_path)["pools"]
    check_pool_demands([PoolDemand(**d) for d in demands], pools, tuple(null_pools))
    tokenizer = Tokenizer(tokenizer_path)
    truncation = {}
    for path in pool_paths:
        pool = Path(path).stem
        truncation[pool] = _truncation(tokenizer, pl.read_parquet(path), pool, max_positions)
    write_json({"pools": pools, "truncated_pairs": truncation}, out)
    return truncation


def _truncation(tokenizer, frame: pl.DataFrame, pool: str, max_positions: dict) -> dict:
    """Pairs of a pool longer than each architecture reads; refused above the share."""
    if not frame.height:
        return {name: 0 for name in max_positions}
    lengths = [
        max(len(s), len(t))
        for s, t in zip(
            tokenizer.encode(frame["source"].to_list()),
            tokenizer.encode(frame["target"].to_list()),
            strict=True,
        )
    ]
    counts = {}
    for name, positions in max_positions.items():
        cut = sum(length > positions - 1 for length in lengths)
        counts[name] = cut
        if cut:
            log.warning(
                "pool %s: %d of %d pairs are longer than architecture %s reads (%d tokens)",
                pool,
                cut,
                frame.height,
                name,
                positions - 1,
            )
        if cut > MAX_TRUNCATED_SHARE * frame.height:
            raise ConfigError(
                f"architectures.{name}.max_positions: {cut} of the {frame.height} pairs of the "
                f"{pool} pool ({cut / frame.height:.1%}) are longer than its {positions - 1} "
                f"tokens and would be cut, which shortens what the study measures; set "
                f"max_positions to at least {max(lengths) + 1} (the longest pair is "
                f"{max(lengths)} tokens), or lower cleaning.max_words"
            )
    return counts


def train_tokenizer(*, teacher_path: Path, model_out: Path, settings: dict, seed: int) -> Path:
    """The joint SentencePiece model, trained on both sides of the teacher pool (with a fixed
    thread count whatever the job was granted: the model's scores depend on it)."""
    teacher = pl.read_parquet(teacher_path)
    sentences = teacher["source"].to_list() + teacher["target"].to_list()
    log.info("training SentencePiece on %d sentences: %s", len(sentences), settings)
    try:
        return train_sentencepiece(
            sentences,
            model_out,
            vocab_size=settings["vocab_size"],
            model_type=settings["model_type"],
            max_sentences=settings["max_sentences"],
            seed=seed,
        )
    except RuntimeError as err:
        limit = re.search(r"Vocabulary size too high \((\d+)\).*<= (\d+)", str(err))
        if not limit:
            raise
        raise ConfigError(
            f"tokenizer.vocab_size: {limit.group(1)} pieces, but the teacher pool "
            f"({teacher.height} pairs) gives at most {limit.group(2)}; set tokenizer.vocab_size "
            f"to {limit.group(2)} or less, or give the teacher pool more pairs"
        ) from None
