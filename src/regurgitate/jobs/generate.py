"""Jobs of workflow/rules/generate.smk: translate a pool into a synthetic-data table, with a
local generator (a trained model) or an API generator (through the cache)."""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

import polars as pl

from regurgitate.engine.decode import DecodeConfig
from regurgitate.engine.device import pick_device, use_bf16
from regurgitate.generators import cost_record, generations_frame
from regurgitate.generators.llm import ApiGenerator
from regurgitate.generators.local import LocalGenerator
from regurgitate.generators.open_weights_settings import BACKEND as OPEN_WEIGHTS
from regurgitate.generators.settings import ApiSettings
from regurgitate.io import write_json, write_parquet

log = logging.getLogger(__name__)


def local_generator(
    *,
    name: str,
    model_path: Path,
    tokenizer_path: Path,
    decoding: dict,
    device: str,
    precision: str,
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


def translate_pool(
    *,
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
    """Translate a pool (`id`, `source`) with a trained model into a synthetic-data table (and
    its token account, as API generators write one, into `cost_out`)."""
    pool = pl.read_parquet(pool_path)
    generator = local_generator(
        name=name,
        model_path=model_path,
        tokenizer_path=tokenizer_path,
        decoding=decoding,
        device=device,
        precision=precision,
    )
    log.info("%s: translating %d sentences with %s", name, pool.height, decoding)
    rows = generator.translate(pool["source"].to_list())
    frame = generations_frame(pool["id"].to_list(), pool["source"].to_list(), rows)
    cut = frame.filter(pl.col("finish_reason") == "length").height
    source_cut = sum("source_cut" in row.flags for row in rows)
    log.info(
        "%s: %d translations, %d cut off at the length limit, %d from sources cut to max_positions",
        name,
        frame.height,
        cut,
        source_cut,
    )
    if cut:
        # A warning, so that the end-of-run summary repeats it: these rows stay in the data.
        log.warning(
            "%s: %d of %d translations were cut off at the length limit (decoding.max_len_a x "
            "source length + max_len_b): the generator repeats itself or did not learn to stop",
            name,
            cut,
            frame.height,
        )
    if source_cut:
        log.warning("%s: %d sources were longer than the model reads", name, source_cut)
    write_parquet(frame, out)
    if cost_out is not None:
        write_json(cost_record(name, "local", None, rows), cost_out)


def translate_pool_by_api(
    *, name: str, generator: dict, prompts: dict | None, pool_path: Path, out: Path, cost_out: Path
) -> dict:
    """Translate a pool with an API generator into the synthetic-data table `out` and its
    account `cost_out`; answers come from the cache where it has them."""
    pool = pl.read_parquet(pool_path)
    settings = ApiSettings.from_config(name, generator, prompts)
    api = ApiGenerator(settings)
    rows = api.translate(pool["source"].to_list())
    record = cost_record(name, settings.backend, settings.model, rows)
    run = asdict(api.account)
    kept = (
        "cached_rows",
        "answered",
        "batch_rows",
        "requests",
        "retries",
        "spent_now",
        "batch_spent",
    )
    record["this_run"] = {k: run[k] for k in kept}
    record["prices_per_million"] = {"input": settings.price_input, "output": settings.price_output}
    log.info("%s: %d rows written to %s; flags %s", name, len(rows), out, record["flags"])
    write_parquet(generations_frame(pool["id"].to_list(), pool["source"].to_list(), rows), out)
    write_json(record, cost_out)
    return record


def generate_synthetic(
    *,
    name: str,
    generator: dict,
    prompts: dict | None,
    pool_path: Path,
    out: Path,
    cost_out: Path,
    model_path: Path | None = None,
    tokenizer_path: Path | None = None,
    decoding: dict | None = None,
    device: str = "auto",
    precision: str = "auto",
) -> None:
    """A generator's translations of a pool: a local generator decodes with its trained model
    (`model_path`, `tokenizer_path`, `decoding`), an API generator asks its backend."""
    if generator["backend"] == OPEN_WEIGHTS:
        from regurgitate.jobs.open_weights import translate_pool_open_weights

        translate_pool_open_weights(
            name=name,
            generator=generator,
            prompts=prompts,
            pool_path=pool_path,
            out=out,
            cost_out=cost_out,
            device=device,
        )
    elif generator["backend"] == "local":
        translate_pool(
            name=name,
            model_path=model_path,
            tokenizer_path=tokenizer_path,
            pool_path=pool_path,
            decoding=decoding,
            out=out,
            device=device,
            precision=precision,
            cost_out=cost_out,
        )
    else:
        translate_pool_by_api(
            name=name,
            generator=generator,
            prompts=prompts,
            pool_path=pool_path,
            out=out,
            cost_out=cost_out,
        )
