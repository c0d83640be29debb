"""Force-decoding: how likely a trained model finds a given target for a given source.

The per-token NLLs feed the dual conditional cross-entropy of quality.py (a forward and a
reverse model score the same pair).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F

from regurgitate.data import budget_batches, collate, encode_pairs
from regurgitate.decode import autocast_context
from regurgitate.io import write_parquet
from regurgitate.model import Transformer, load_model
from regurgitate.pipeline import pick_device
from regurgitate.tokenizer import Tokenizer
from regurgitate.train import use_bf16


@torch.no_grad()
def pair_nll(
    model: Transformer,
    tokenizer,
    sources: list[str],
    targets: list[str],
    batch_tokens: int,
    device: str | torch.device,
    *,
    bf16: bool = False,
) -> np.ndarray:
    """Mean negative log-likelihood per target token (EOS included) of each target given its
    source, in input order.

    Pad and BOS are masked out of the distribution as the decoder masks them, so the NLL of a
    decoded target equals minus its decoder log-probability over its tokens + 1. Sources and
    targets longer than the model's positions are cut as in training. Batches hold pairs of
    similar length, at most `batch_tokens` padded target tokens each.
    """
    if len(sources) != len(targets):
        raise ValueError(f"{len(sources)} sources but {len(targets)} targets")
    device = torch.device(device)
    model.eval()
    data = encode_pairs(tokenizer, sources, targets, model.cfg.max_positions)
    pairs = zip(data.sources, data.targets, strict=True)
    lengths = np.array([max(len(s), len(t)) + 1 for s, t in pairs])
    order = np.argsort(lengths, kind="stable").tolist()
    nll = np.empty(len(sources), dtype=np.float64)
    for indices in budget_batches(order, lengths, batch_tokens):
        batch = collate(data, indices, tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id)
        batch = batch.to(device)
        with autocast_context(device, bf16):
            logits = model(batch.src, batch.tgt_in)
        logits = logits.float()
        logits[..., [model.cfg.pad_id, tokenizer.bos_id]] = float("-inf")
        token_nll = F.cross_entropy(
            logits.transpose(1, 2), batch.tgt_out, ignore_index=tokenizer.pad_id, reduction="none"
        )
        counts = (batch.tgt_out != tokenizer.pad_id).sum(dim=1)
        nll[indices] = (token_nll.sum(dim=1) / counts).cpu().numpy()
    return nll


def reverse_direction(pairs: pl.DataFrame) -> pl.DataFrame:
    """The same pairs the other way round (target becomes source), for training a reverse
    (English to German) model or back-translating with the existing trainer and generator.

    Keeps `id` where present; drops other columns, which describe the forward direction.
    """
    missing = [c for c in ("source", "target") if c not in pairs.columns]
    if missing:
        raise ValueError(f"pairs lack the columns {missing}")
    keep = ["id"] if "id" in pairs.columns else []
    return pairs.select(*keep, pl.col("target").alias("source"), pl.col("source").alias("target"))


def nll_job(
    model_path: Path,
    tokenizer_path: Path,
    pairs_path: Path,
    out: Path,
    *,
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
    nll = pair_nll(
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
