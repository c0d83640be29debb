"""Token-budget batches of sentence pairs, bucketed by length so that little is padding."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass
class EncodedPairs:
    """Token ids of a parallel corpus; targets carry no BOS/EOS (added when batching)."""

    sources: list[list[int]]
    targets: list[list[int]]
    truncated: int = 0  # pairs whose source or target was cut to fit the model

    def __post_init__(self):
        if len(self.sources) != len(self.targets):
            raise ValueError("sources and targets differ in length")

    def __len__(self) -> int:
        return len(self.sources)


def truncate(ids: list[int], max_len: int) -> list[int]:
    return ids[:max_len]


def encode_pairs(tokenizer, sources: list[str], targets: list[str], max_len: int) -> EncodedPairs:
    """Encode and truncate to `max_len` tokens (one place is kept for EOS/BOS), counting the
    pairs that were cut."""
    src, tgt = tokenizer.encode(sources), tokenizer.encode(targets)
    keep = max_len - 1
    truncated = sum(len(s) > keep or len(t) > keep for s, t in zip(src, tgt, strict=True))
    return EncodedPairs(
        [truncate(ids, keep) for ids in src], [truncate(ids, keep) for ids in tgt], truncated
    )


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
    """Rows of token ids as one (rows, longest) tensor, padded with `pad_id`."""
    return torch.from_numpy(_padded(rows, pad_id)[0])


def _padded(rows: list[list[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """The padded rows and where they are not padding: one copy of all tokens into their
    places, not a tensor per row."""
    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    out = np.full((len(rows), lengths.max()), pad_id, dtype=np.int64)
    real = np.arange(out.shape[1]) < lengths[:, None]
    # Boolean assignment fills row by row, left to right.
    out[real] = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=real.sum())
    return out, real


@dataclass
class Batch:
    """A training batch. `real` (the flat positions in tgt_out that are not padding, row by
    row) and `targets` (the tokens there) are made on the host with the batch, so the training
    step picks the real positions by index: a boolean mask would make the host wait for the
    device to count them (nonzero) at every step."""

    src: Tensor
    tgt_in: Tensor
    tgt_out: Tensor
    target_tokens: int
    real: Tensor
    targets: Tensor

    def to(self, device) -> Batch:
        # From page-locked memory a copy to a GPU is queued without waiting for the GPU.
        pin = torch.device(device).type == "cuda"

        def move(t: Tensor) -> Tensor:
            return (t.pin_memory() if pin else t).to(device, non_blocking=True)

        return Batch(
            move(self.src),
            move(self.tgt_in),
            move(self.tgt_out),
            self.target_tokens,
            move(self.real),
            move(self.targets),
        )


def collate(data: EncodedPairs, indices: list[int], pad_id: int, bos_id: int, eos_id: int) -> Batch:
    src = [data.sources[i] + [eos_id] for i in indices]
    tgt_out, real = _padded([data.targets[i] + [eos_id] for i in indices], pad_id)
    return Batch(
        src=pad(src, pad_id),
        tgt_in=pad([[bos_id] + data.targets[i] for i in indices], pad_id),
        tgt_out=torch.from_numpy(tgt_out),
        target_tokens=int(real.sum()),
        real=torch.from_numpy(np.flatnonzero(real)),
        targets=torch.from_numpy(tgt_out[real]),
    )


def padding_fraction(batches: list[Batch]) -> float:
    """Share of target positions that are padding, over a list of batches."""
    total = sum(b.tgt_out.numel() for b in batches)
    real = sum(b.target_tokens for b in batches)
    return 1.0 - real / total if total else 0.0
