"""Jobs of the open-weight arm (workflow/rules/open_weights.smk, and generate_synthetic for a
huggingface generator): translate a pool, score a model on the test set, fine-tune a base on a
curriculum prefix. They write the files the local and API paths write, so the rest of the
workflow reads them unchanged."""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl

from regurgitate.engine.device import pick_device
from regurgitate.generators import cost_record, generations_frame
from regurgitate.generators.open_weights import OpenWeightsGenerator
from regurgitate.generators.open_weights_finetune import FinetuneSettings, finetune
from regurgitate.generators.open_weights_settings import BACKEND, OpenWeightsSettings
from regurgitate.io import read_json, write_json, write_parquet
from regurgitate.jobs.evaluate import write_scored_rows
from regurgitate.jobs.train import read_pairs

log = logging.getLogger(__name__)


def open_weights_generator(
    name: str, generator: dict, prompts: dict | None, device: str, weights: Path | None = None
) -> OpenWeightsGenerator:
    settings = OpenWeightsSettings.from_config(name, generator, prompts)
    return OpenWeightsGenerator(settings, pick_device(device), weights)


def translate_pool_open_weights(
    *,
    name: str,
    generator: dict,
    prompts: dict | None,
    pool_path: Path,
    out: Path,
    cost_out: Path | None = None,
    device: str = "auto",
    weights: Path | None = None,
) -> dict:
    """Translate a pool (`id`, `source`) into a synthetic-data table and its token account;
    `weights` is a fine-tuned run's folder (a recursion generation), else the base translates."""
    pool = pl.read_parquet(pool_path)
    model = open_weights_generator(name, generator, prompts, device, weights)
    rows = model.translate(pool["source"].to_list())
    frame = generations_frame(pool["id"].to_list(), pool["source"].to_list(), rows)
    record = cost_record(name, BACKEND, model.model_id, rows)
    log.info(
        "%s: %d translations, %d cut off, flags %s",
        name, frame.height, frame.filter(pl.col("finish_reason") == "length").height,
        record["flags"],
    )  # fmt: skip
    write_parquet(frame, out)
    if cost_out is not None:
        write_json(record, cost_out)
    return record


def evaluate_open_weights(
    *,
    name: str,
    generator: dict,
    prompts: dict | None,
    test_path: Path,
    labels: dict,
    metrics_out: Path,
    hypotheses_out: Path,
    device: str = "auto",
    weights: Path | None = None,
    summary_path: Path | None = None,
) -> dict:
    """Score a huggingface generator, or a fine-tuned run of it (`weights`, its training
    `summary_path`), on the test set: BLEU and chrF as for every model, with its tokens."""
    test = pl.read_parquet(test_path)
    model = open_weights_generator(name, generator, prompts, device, weights)
    rows = model.translate(test["source"].to_list())
    record = {**labels, "model": model.model_id, "decoding": vars(model.settings.decoding)}
    if summary_path is not None:
        summary = read_json(summary_path)
        record["train"] = {k: v for k, v in summary.items() if k != "dev_history"}
    return write_scored_rows(
        name, BACKEND, rows, test, record, metrics_out=metrics_out, hypotheses_out=hypotheses_out
    )


def finetune_open_weights(
    *,
    curriculum_path: Path,
    rows: int | None,
    dev_path: Path,
    name: str,
    generator: dict,
    prompts: dict | None,
    training: dict,
    method: dict,
    checkpoint: Path,
    model_out: Path,
    summary_out: Path,
    device: str = "auto",
) -> dict:
    """One E1 run (or recursion generation) on an open-weight base: fine-tune it on the first
    `rows` pairs of a curriculum (all when None); `model_out` is a folder (the LoRA adapter,
    or full weights). `checkpoint` lies outside the outputs, so a killed job resumes."""
    pairs = read_pairs(curriculum_path, rows)
    dev = pl.read_parquet(dev_path)
    settings = OpenWeightsSettings.from_config(name, generator, prompts)
    summary = finetune(
        settings,
        FinetuneSettings.from_config(training, method),
        pairs["source"].to_list(),
        pairs["target"].to_list(),
        (dev["source"].to_list(), dev["target"].to_list()),
        Path(checkpoint),
        Path(model_out),
        pick_device(device),
    )
    summary["training"] = training
    write_json(summary, summary_out)
    return summary
