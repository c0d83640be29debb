"""Workflow jobs of API generators: translate a pool into a synthetic-data table, or score a
model (a fine-tuned one too) on the test set, through the same cached path."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import polars as pl

from regurgitate import metrics
from regurgitate.generators.base import Generation, generations_frame
from regurgitate.generators.llm import ApiGenerator
from regurgitate.generators.settings import ApiSettings
from regurgitate.io import write_json, write_lines, write_parquet

log = logging.getLogger(__name__)


def cost_record(name: str, backend: str, model: str | None, rows: list[Generation]) -> dict:
    """Tokens, money and flags of one synthetic-data table (`<generator>.cost.json`)."""
    flags = Counter(flag for row in rows for flag in row.flags)
    return {
        "generator": name,
        "backend": backend,
        "model": model,
        "rows": len(rows),
        "input_tokens": sum(r.input_tokens for r in rows),
        "output_tokens": sum(r.tokens for r in rows),
        "cost": sum(r.cost for r in rows),
        "flags": dict(sorted(flags.items())),
    }


def api_generate_job(
    name: str, generator: dict, prompts: dict | None, pool_path: Path, out: Path, cost_out: Path
) -> dict:
    """Translate a pool (`id`, `source`) with an API generator into the synthetic-data table
    `out` and its account `cost_out`; answers come from the cache where it has them."""
    pool = pl.read_parquet(pool_path)
    settings = ApiSettings.from_config(name, generator, prompts)
    api = ApiGenerator(settings)
    rows = api.translate(pool["source"].to_list())
    record = cost_record(name, settings.backend, settings.model, rows)
    run = asdict(api.account)
    record["this_run"] = {k: run[k] for k in ("cached_rows", "requests", "retries", "spent_now")}
    record["prices_per_million"] = {"input": settings.price_input, "output": settings.price_output}
    log.info("%s: %d rows written to %s; flags %s", name, len(rows), out, record["flags"])
    write_parquet(generations_frame(pool["id"].to_list(), pool["source"].to_list(), rows), out)
    write_json(record, cost_out)
    return record


def api_evaluate_job(
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
    hypotheses = [row.target for row in rows]
    scores = metrics.score(hypotheses, test["target"].to_list())
    record = {
        **labels,
        **scores,
        "model": settings.model,
        "cost": cost_record(name, settings.backend, settings.model, rows),
    }
    log.info("%s (%s): BLEU %.2f chrF %.2f", name, settings.model, scores["bleu"], scores["chrf"])
    write_lines(hypotheses, hypotheses_out)
    write_json(record, metrics_out)
    return record
