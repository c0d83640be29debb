"""Jobs of workflow/rules/train.smk: training a model (generator or student), and E1 through the
OpenAI fine-tuning API. The rule file's curricula are built by jobs.curricula."""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl

from regurgitate.engine.batching import encode_pairs
from regurgitate.engine.device import pick_device
from regurgitate.engine.model import ModelConfig, load_model, save_model
from regurgitate.engine.tokenizer import Tokenizer
from regurgitate.engine.train import (
    DevSet,
    TrainConfig,
    remove_checkpoints,
    split_timing,
    train,
)
from regurgitate.generators.openai_finetune import finetune
from regurgitate.io import remove_stale_temporaries, write_json

log = logging.getLogger(__name__)


def read_pairs(path: Path, rows: int | None) -> pl.DataFrame:
    """The first `rows` pairs of a pool or curriculum (all when None)."""
    pairs = pl.read_parquet(path)
    if rows is not None:
        if rows > pairs.height:
            raise ValueError(f"{path} holds {pairs.height} pairs, {rows} were asked for")
        pairs = pairs.head(rows)
    return pairs


def train_model(
    *,
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
    """Train one model on the first `rows` pairs (all when None) of a pool or curriculum;
    `init_model` starts it from a trained model's weights (E1 fine-tuning)."""
    for out in (model_out, summary_out):
        remove_stale_temporaries(out)  # what a killed attempt was writing
    tokenizer = Tokenizer(tokenizer_path)
    pairs = read_pairs(pairs_path, rows)
    max_positions = architecture.get("max_positions", ModelConfig.max_positions)
    data = encode_pairs(
        tokenizer, pairs["source"].to_list(), pairs["target"].to_list(), max_positions
    )
    if data.truncated:
        log.warning(
            "%d of %d training pairs are longer than max_positions - 1 = %d tokens and were cut",
            data.truncated,
            len(data),
            max_positions - 1,
        )
    dev = pl.read_parquet(dev_path)
    model_cfg = ModelConfig(
        vocab_size=tokenizer.vocab_size, pad_id=tokenizer.pad_id, **architecture
    )
    init_state = load_model(init_model)[0].state_dict() if init_model else None
    model, summary = train(
        model_cfg,
        TrainConfig(**training),
        data,
        DevSet(dev["source"].to_list(), dev["target"].to_list()),
        tokenizer,
        checkpoint,
        device=pick_device(device),
        init_state=init_state,
    )
    summary, _ = split_timing(summary)  # the log has them; results stay reproducible
    summary.update(
        pairs=pairs.height,
        truncated_pairs=data.truncated,
        training=training,
        architecture=architecture,
        init_model=str(init_model) if init_model else None,
    )
    save_model(model, model_out, extra={"summary": summary})
    write_json(summary, summary_out)
    remove_checkpoints(checkpoint)  # the finished model supersedes them
    return summary


def finetune_api(
    *,
    curriculum_path: Path,
    rows: int,
    name: str,
    generator: dict,
    prompts: dict | None,
    seed: int,
    state_path: Path,
    record_out: Path,
    hyperparameters: dict | None = None,
    poll_seconds: float = 60.0,
) -> dict:
    """One E1 run through the API: fine-tune on the first `rows` pairs of a curriculum.

    `state_path` lies outside the workflow's outputs, so a failed or killed run keeps the ids of
    what was paid for and a restart polls the same job."""
    record = finetune(
        read_pairs(curriculum_path, rows),
        name,
        generator,
        prompts,
        seed,
        state_path,
        hyperparameters=hyperparameters,
        poll_seconds=poll_seconds,
    )
    write_json(record, record_out)
    return record
