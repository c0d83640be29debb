"""One function per workflow job: read the job's inputs, call the library, write its outputs.

Workflow scripts are thin wrappers around these, so every job can also run from Python.
"""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl
import torch

from regurgitate import metrics
from regurgitate.data import encode_pairs
from regurgitate.decode import DecodeConfig
from regurgitate.generators import generations_frame
from regurgitate.generators.jobs import cost_record
from regurgitate.generators.local import LocalGenerator
from regurgitate.io import write_json, write_lines, write_parquet
from regurgitate.model import ModelConfig, load_model, save_model
from regurgitate.tokenizer import Tokenizer, train_tokenizer
from regurgitate.train import DevSet, TrainConfig, train, use_bf16

log = logging.getLogger(__name__)


def pick_device(name: str) -> torch.device:
    """`auto` is CUDA where present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def tokenizer_job(teacher_pool: Path, model_out: Path, settings: dict, seed: int, threads: int):
    teacher = pl.read_parquet(teacher_pool)
    sentences = teacher["source"].to_list() + teacher["target"].to_list()
    log.info("training SentencePiece on %d sentences: %s", len(sentences), settings)
    train_tokenizer(
        sentences,
        model_out,
        vocab_size=settings["vocab_size"],
        model_type=settings["model_type"],
        max_sentences=settings["max_sentences"],
        seed=seed,
        threads=threads,
    )


def read_pairs(path: Path, rows: int | None) -> pl.DataFrame:
    pairs = pl.read_parquet(path)
    if rows is not None:
        if rows > pairs.height:
            raise ValueError(f"{path} holds {pairs.height} pairs, {rows} were asked for")
        pairs = pairs.head(rows)
    return pairs


def train_job(
    pairs_path: Path,
    rows: int | None,
    dev_path: Path,
    tokenizer_path: Path,
    architecture: dict,
    training: dict,
    checkpoint: Path,
    model_out: Path,
    summary_out: Path,
    device: str = "auto",
    init_model: Path | None = None,
) -> dict:
    """Train one model on the first `rows` pairs (all when None) of a pool or curriculum."""
    tokenizer = Tokenizer(tokenizer_path)
    pairs = read_pairs(pairs_path, rows)
    max_positions = architecture.get("max_positions", ModelConfig.max_positions)
    data = encode_pairs(
        tokenizer, pairs["source"].to_list(), pairs["target"].to_list(), max_positions
    )
    dev = pl.read_parquet(dev_path)
    model_cfg = ModelConfig(
        vocab_size=tokenizer.vocab_size, pad_id=tokenizer.pad_id, **architecture
    )
    train_cfg = TrainConfig(**training)
    init_state = load_model(init_model)[0].state_dict() if init_model else None
    model, summary = train(
        model_cfg,
        train_cfg,
        data,
        DevSet(dev["source"].to_list(), dev["target"].to_list()),
        tokenizer,
        checkpoint,
        device=pick_device(device),
        init_state=init_state,
    )
    summary.update(
        pairs=pairs.height,
        training=training,
        architecture=architecture,
        init_model=str(init_model) if init_model else None,
    )
    save_model(model, model_out, extra={"summary": summary})
    write_json(summary, summary_out)
    checkpoint.unlink(missing_ok=True)  # the finished model supersedes it
    return summary


def local_generator(
    name: str, model_path: Path, tokenizer_path: Path, decoding: dict, device: str, precision: str
) -> LocalGenerator:
    where = pick_device(device)
    return LocalGenerator(
        name,
        model_path,
        tokenizer_path,
        DecodeConfig(**decoding),
        where,
        use_bf16(precision, where),
    )


def generate_job(
    name: str,
    model_path: Path,
    tokenizer_path: Path,
    pool_path: Path,
    decoding: dict,
    out: Path,
    device: str = "auto",
    precision: str = "auto",
    cost_out: Path | None = None,
) -> None:
    """Translate a pool with a local generator into `results/synthetic/<name>.parquet` (and
    its token account, as API generators write one, into `cost_out`)."""
    pool = pl.read_parquet(pool_path)
    generator = local_generator(name, model_path, tokenizer_path, decoding, device, precision)
    log.info("%s: translating %d sentences with %s", name, pool.height, decoding)
    rows = generator.translate(pool["source"].to_list())
    frame = generations_frame(pool["id"].to_list(), pool["source"].to_list(), rows)
    cut = frame.filter(pl.col("finish_reason") == "length").height
    log.info("%s: %d translations, %d cut off at the length limit", name, frame.height, cut)
    write_parquet(frame, out)
    if cost_out is not None:
        write_json(cost_record(name, "local", None, rows), cost_out)


def evaluate_job(
    model_path: Path,
    tokenizer_path: Path,
    test_path: Path,
    decoding: dict,
    labels: dict,
    metrics_out: Path,
    hypotheses_out: Path,
    device: str = "auto",
    precision: str = "auto",
) -> dict:
    """Translate the test pool (with the decoder that writes synthetic data) and score it:
    BLEU and chrF with their signatures go to the metrics JSON."""
    test = pl.read_parquet(test_path)
    model = local_generator("test", model_path, tokenizer_path, decoding, device, precision)
    hypotheses = [row.target for row in model.translate(test["source"].to_list())]
    scores = metrics.score(hypotheses, test["target"].to_list())
    train = {k: v for k, v in model.training_summary.items() if k != "dev_history"}
    record = {**labels, **scores, "decoding": decoding, "train": train}
    log.info("BLEU %.2f chrF %.2f (%s)", scores["bleu"], scores["chrf"], scores["bleu_signature"])
    write_lines(hypotheses, hypotheses_out)
    write_json(record, metrics_out)
    return record
