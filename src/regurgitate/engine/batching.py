"""Token-budget batches of sentence pairs, bucketed by length so that little is padding."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass
class EncodedPairs:
    """Token ids of a parallel corpus; targets carry no BOS/EOS (added when batching)."""

    sources: list[list[int]]
    targets: list[list[int]]

    def __post_init__(self):
        if len(self.sources) != len(self.targets):
            raise ValueError("sources and targets differ in length")

    def __len__(self) -> int:
        return len(self.sources)


def truncate(ids: list[int], max_len: int) -> list[int]:
    return ids[:max_len]


def encode_pairs(tokenizer, sources: list[str], targets: list[str], max_len: int) -> EncodedPairs:
    """Encode and truncate to `max_len` tokens (one place is kept for EOS/BOS)."""
    src = [truncate(ids, max_len - 1) for ids in tokenizer.encode(sources)]
    tgt = [truncate(ids, max_len - 1) for ids in tokenizer.encode(targets)]
    return EncodedPairs(src, tgt)


def budget_batches(order: list[int], lengths, max_tokens: int, width: int = 1) -> list[list[int]]:
    """Cut `order` into consecutive batches whose padded size (rows x longest x width) fits
    `max_tokens`; a row longer than the budget gets a batch of its own."""
    batches, current, longest = [], [], 0
    for i in order:
        n = int(lengths[i])
        if current and max(longest, n) * (len(current) + 1) * width > max_tokens:
            batches.append(current)
            current, longest = [], 0
        current.append(i)
        longest = max(longest, n)
    if current:
        batches.append(current)
    return batches


def length_buckets(
    lengths: np.ndarray, max_tokens: int, rng: np.random.Generator
) -> list[list[int]]:
    """Group indices into batches whose padded size (rows x longest row) stays within max_tokens.

    Sorting by length (random tie-breaks) keeps similar lengths together; batch order is then
    shuffled so that training does not see a length curriculum.
    """
    order = np.lexsort((rng.random(len(lengths)), lengths)).tolist()
    batches = budget_batches(order, lengths, max_tokens)
    rng.shuffle(batches)
    return batches


def epoch_batches(data: EncodedPairs, max_tokens: int, seed: int, epoch: int) -> list[list[int]]:
    """The batches of one epoch: a function of (seed, epoch) alone, so a resumed run sees them."""
    rng = np.random.default_rng([seed, epoch])
    lengths = np.array(
        [max(len(s) + 1, len(t) + 1) for s, t in zip(data.sources, data.targets, strict=True)]
    )
    return length_buckets(lengths, max_tokens, rng)


def pad(rows: list[list[int]], pad_id: int) -> Tensor:
    width = max(len(r) for r in rows)
    out = torch.full((len(rows), width), pad_id, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return out


@dataclass
class Batch:
    src: Tensor
    tgt_in: Tensor
    tgt_out: Tensor
    target_tokens: int

    def to(self, device) -> Batch:
        return Batch(
            self.src.to(device, non_blocking=True),
            self.tgt_in.to(device, non_blocking=True),
            self.tgt_out.to(device, non_blocking=True),
            self.target_tokens,
        )


def collate(data: EncodedPairs, indices: list[int], pad_id: int, bos_id: int, eos_id: int) -> Batch:
    src = [data.sources[i] + [eos_id] for i in indices]
    tgt = [data.targets[i] for i in indices]
    return Batch(
        src=pad(src, pad_id),
        tgt_in=pad([[bos_id] + t for t in tgt], pad_id),
        tgt_out=pad([t + [eos_id] for t in tgt], pad_id),
        target_tokens=sum(len(t) + 1 for t in tgt),
    )


def padding_fraction(batches: list[Batch]) -> float:
    """Share of target positions that are padding, over a list of batches."""
    total = sum(b.tgt_out.numel() for b in batches)
    real = sum(b.target_tokens for b in batches)
    return 1.0 - real / total if total else 0.0
