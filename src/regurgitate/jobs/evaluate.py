"""Jobs of workflow/rules/evaluate.smk: translate the test pool and score it with sacreBLEU,
for local models (students, generators) and API models (generators, fine-tuned models)."""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl

from regurgitate.engine.metrics import score
from regurgitate.generators import cost_record
from regurgitate.generators.llm import ApiGenerator
from regurgitate.generators.settings import ApiSettings
from regurgitate.io import read_json, write_json, write_lines
from regurgitate.jobs.generate import local_generator

log = logging.getLogger(__name__)


def evaluate_model(
    *,
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
    model = local_generator(
        name="test",
        model_path=model_path,
        tokenizer_path=tokenizer_path,
        decoding=decoding,
        device=device,
        precision=precision,
    )
    hypotheses = [row.target for row in model.translate(test["source"].to_list())]
    scores = score(hypotheses, test["target"].to_list())
    train = {k: v for k, v in model.training_summary.items() if k != "dev_history"}
    record = {**labels, **scores, "decoding": decoding, "train": train}
    log.info("BLEU %.2f chrF %.2f (%s)", scores["bleu"], scores["chrf"], scores["bleu_signature"])
    write_lines(hypotheses, hypotheses_out)
    write_json(record, metrics_out)
    return record


def evaluate_api_model(
    *,
    name: str,
    generator: dict,
    prompts: dict | None,
    test_path: Path,
    labels: dict,
    metrics_out: Path,
    hypotheses_out: Path,
    model: str | None = None,
) -> dict:
    """Score an API generator, or `model` through its settings (a fine-tuned model's id), on the
    test set: BLEU and chrF as for local models, plus tokens and cost."""
    test = pl.read_parquet(test_path)
    config = {**generator, "model": model} if model else generator
    settings = ApiSettings.from_config(name, config, prompts)
    rows = ApiGenerator(settings).translate(test["source"].to_list())
    record = {**labels, "model": settings.model}
    return write_scored_rows(
        name, settings.backend, rows, test, record, metrics_out=metrics_out,
        hypotheses_out=hypotheses_out,
    )  # fmt: skip


def write_scored_rows(
    name: str, backend: str, rows: list, test: pl.DataFrame, record: dict, *, metrics_out: Path,
    hypotheses_out: Path,
) -> dict:  # fmt: skip
    """Score a generator's rows of the test set (BLEU and chrF, as for every model) and write
    its hypotheses and its metrics: `record` (labels, model, ...) with the scores and the cost
    of `rows`."""
    hypotheses = [row.target for row in rows]
    scores = score(hypotheses, test["target"].to_list())
    record = {**record, **scores, "cost": cost_record(name, backend, record["model"], rows)}
    log.info("%s (%s): BLEU %.2f chrF %.2f", name, record["model"], scores["bleu"], scores["chrf"])
    write_lines(hypotheses, hypotheses_out)
    write_json(record, metrics_out)
    return record


def evaluate_finetuned_api(
    *,
    record_path: Path,
    name: str,
    generator: dict,
    prompts: dict | None,
    test_path: Path,
    labels: dict,
    metrics_out: Path,
    hypotheses_out: Path,
) -> dict:
    """Score the fine-tuned model that `record_path` (finetune_api's record) names on the test
    set through the openai generator path: cached, retried, accounted, scored like the rest."""
    record = read_json(record_path)
    return evaluate_api_model(
        name=name,
        generator=generator,
        prompts=prompts,
        test_path=test_path,
        labels={
            **labels,
            "fine_tuned_model": record["fine_tuned_model"],
            "job_id": record["job_id"],
        },
        metrics_out=metrics_out,
        hypotheses_out=hypotheses_out,
        model=record["fine_tuned_model"],
    )
