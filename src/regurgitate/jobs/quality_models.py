"""Jobs of workflow/rules/mitigate.smk that run a trained model for S1's quality metrics: the
reverse model's back-translations (round trip) and the pairs' cross-entropy under a model (dual
cross-entropy). Apart from jobs.mitigate because torch takes seconds to import, which the
stage's other jobs do not need."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from regurgitate.analysis.quality import reverse_direction
from regurgitate.engine.device import pick_device, use_bf16
from regurgitate.engine.model import load_model
from regurgitate.engine.scoring import pair_nll as force_decoded_nll
from regurgitate.engine.tokenizer import Tokenizer
from regurgitate.io import write_parquet
from regurgitate.jobs.generate import translate_pool


def back_translate(
    *,
    generator: str,
    model_path: Path,
    tokenizer_path: Path,
    pool_path: Path,
    decoding: dict,
    out: Path,
    device: str = "auto",
    precision: str = "auto",
) -> None:
    """The reverse model's translations of a generator's targets (round trip)."""
    translate_pool(
        name=f"reverse model on {generator}",
        model_path=model_path,
        tokenizer_path=tokenizer_path,
        pool_path=pool_path,
        decoding=decoding,
        out=out,
        device=device,
        precision=precision,
    )


def pair_nll(
    *,
    model_path: Path,
    tokenizer_path: Path,
    pairs_path: Path,
    out: Path,
    reverse: bool = False,
    batch_tokens: int = 8000,
    device: str = "auto",
    precision: str = "auto",
) -> pl.DataFrame:
    """Score every pair of a parquet (id, source, target) under a model: writes (id, nll).

    `reverse` scores the source given the target, for the reverse model of dual cross-entropy.
    """
    where = pick_device(device)
    pairs = pl.read_parquet(pairs_path)
    if reverse:
        pairs = reverse_direction(pairs)
    model, _ = load_model(model_path, where)
    nll = force_decoded_nll(
        model,
        Tokenizer(tokenizer_path),
        pairs["source"].to_list(),
        pairs["target"].to_list(),
        batch_tokens,
        where,
        bf16=use_bf16(precision, where),
    )
    frame = pl.DataFrame({"id": pairs["id"], "nll": nll})
    write_parquet(frame, out)
    return frame
