"""Force-decoding: how likely a trained model finds a given target for a given source.

The per-token NLLs feed the dual conditional cross-entropy of quality.py (a forward and a
reverse model score the same pair).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from regurgitate.engine.batching import budget_batches, collate, encode_pairs
from regurgitate.engine.device import autocast_context
from regurgitate.engine.model import Transformer


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
