"""Batched beam search with a key/value cache; beam 1 is greedy decoding.

The same code translates test sets and writes synthetic training data, so a generator's output and
a student's test translations come from one decoder.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from regurgitate.data import budget_batches, pad
from regurgitate.model import Transformer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DecodeConfig:
    beam: int = 4
    length_penalty: float = 1.0  # score = logprob / length ** length_penalty
    max_len_a: float = 1.5  # a target may have at most a * source_tokens + b tokens
    max_len_b: int = 10
    max_tokens: int = 6000  # rows x longest source x beam per batch

    def __post_init__(self):
        if self.beam < 1:
            raise ValueError(f"beam must be at least 1, got {self.beam}")


@dataclass
class Hypothesis:
    tokens: list[int]  # without BOS and EOS
    logprob: float  # sum of token log-probabilities, EOS included
    finished: bool  # False when the length limit cut it off


def length_limits(src: Tensor, pad_id: int, cfg: DecodeConfig, max_positions: int) -> Tensor:
    src_len = (src != pad_id).sum(dim=1)
    limit = (cfg.max_len_a * src_len + cfg.max_len_b).long()
    return limit.clamp(min=1, max=max_positions - 1)


@torch.no_grad()
def beam_search(
    model: Transformer, src: Tensor, cfg: DecodeConfig, bos_id: int, eos_id: int
) -> list[Hypothesis]:
    """Translate a padded batch of sources (batch, src_len); returns the best hypothesis of each."""
    k = cfg.beam
    n_sent = src.shape[0]
    limits = length_limits(src, model.cfg.pad_id, cfg, model.positions.shape[0]).tolist()
    memory, mask = model.encode(src)
    memory, mask = memory.repeat_interleave(k, 0), mask.repeat_interleave(k, 0)
    memory_kv = model.memory_kv(memory)

    alive = list(range(n_sent))  # the sentence each group of k rows belongs to
    tokens = torch.full((n_sent * k, 1), bos_id, dtype=torch.long, device=src.device)
    scores = torch.zeros(n_sent, k, device=src.device)
    scores[:, 1:] = float("-inf")  # all beams start identical: keep one
    finished: list[list[tuple[float, Hypothesis]]] = [[] for _ in range(n_sent)]
    cache: dict = {}
    offsets = torch.arange(k, device=src.device)

    for step in range(max(limits)):
        logits = model.decode(tokens[:, -1:], memory_kv, mask, cache, offset=step)[:, -1]
        logits[:, [model.cfg.pad_id, bos_id]] = float("-inf")  # never part of a translation
        n = len(alive)
        logp = F.log_softmax(logits.float(), dim=-1).view(n, k, -1)
        vocab = logp.shape[-1]
        at_limit = torch.tensor([step + 1 >= limits[s] for s in alive], device=src.device)
        if at_limit.any():
            eos_logp = logp[at_limit, :, eos_id]
            logp[at_limit] = float("-inf")
            logp[at_limit, :, eos_id] = eos_logp

        top_scores, top_idx = (scores.unsqueeze(-1) + logp).view(n, -1).topk(2 * k, dim=1)
        top_beam, top_tok = top_idx // vocab, top_idx % vocab
        is_eos = (top_tok == eos_id) & torch.isfinite(top_scores)

        # Hypotheses ending among the k best candidates are complete.
        for r, c in is_eos[:, :k].nonzero().tolist():
            sent = alive[r]
            if len(finished[sent]) < k:
                row = r * k + int(top_beam[r, c])
                raw = float(top_scores[r, c])
                hyp = Hypothesis(tokens[row, 1:].tolist(), raw, finished=not bool(at_limit[r]))
                finished[sent].append((raw / (len(hyp.tokens) + 1) ** cfg.length_penalty, hyp))

        # The k best candidates that do not end go on.
        rank = is_eos.long() * (2 * k) + torch.arange(2 * k, device=src.device)
        keep = rank.topk(k, dim=1, largest=False).indices
        scores = top_scores.gather(1, keep)
        rows = torch.arange(n, device=src.device).unsqueeze(1) * k + top_beam.gather(1, keep)
        rows = rows.view(-1)
        tokens = torch.cat([tokens[rows], top_tok.gather(1, keep).view(-1, 1)], dim=1)
        for key, (ck, cv) in cache.items():
            cache[key] = (ck[rows], cv[rows])

        done = [len(finished[s]) >= k or bool(at_limit[r]) for r, s in enumerate(alive)]
        if all(done):
            break
        if any(done):
            groups = torch.tensor([r for r, d in enumerate(done) if not d], device=src.device)
            rows = (groups.unsqueeze(1) * k + offsets).view(-1)
            alive = [alive[r] for r in groups.tolist()]
            tokens, scores, mask = tokens[rows], scores[groups], mask[rows]
            memory_kv = [(mk[rows], mv[rows]) for mk, mv in memory_kv]
            for key, (ck, cv) in cache.items():
                cache[key] = (ck[rows], cv[rows])

    return [max(hyps, key=lambda item: item[0])[1] for hyps in finished]


def decode_batches(lengths: list[int], max_tokens: int, beam: int) -> list[list[int]]:
    """Indices grouped by similar source length so that a batch holds little padding."""
    order = np.argsort(np.asarray(lengths), kind="stable").tolist()
    return budget_batches(order, lengths, max_tokens, width=beam)


def autocast_context(device: torch.device, bf16: bool):
    if bf16:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return torch.autocast(device_type=device.type, enabled=False)


@torch.no_grad()
def translate(
    model: Transformer,
    tokenizer,
    sources: list[str],
    cfg: DecodeConfig,
    *,
    bf16: bool = False,
    progress: str | None = None,
) -> list[tuple[str, Hypothesis]]:
    """Translate sentences in length-sorted batches; results come back in input order.

    `progress`, when given, names the job in periodic log lines (sentences done, sentences/s).
    """
    model.eval()
    device = next(model.parameters()).device
    max_src = model.positions.shape[0] - 1
    encoded = [ids[: max_src - 1] + [tokenizer.eos_id] for ids in tokenizer.encode(sources)]
    batches = decode_batches([len(e) for e in encoded], cfg.max_tokens, cfg.beam)
    results: list[Hypothesis | None] = [None] * len(sources)
    start, done, next_report = time.perf_counter(), 0, 0.1
    for indices in batches:
        src = pad([encoded[i] for i in indices], tokenizer.pad_id).to(device)
        with autocast_context(device, bf16):
            hyps = beam_search(model, src, cfg, tokenizer.bos_id, tokenizer.eos_id)
        for i, hyp in zip(indices, hyps, strict=True):
            results[i] = hyp
        done += len(indices)
        if progress and done / len(sources) >= next_report:
            rate = done / (time.perf_counter() - start)
            log.info("%s: %d/%d sentences (%.1f sentences/s)", progress, done, len(sources), rate)
            next_report += 0.1
    texts = tokenizer.decode([h.tokens for h in results])
    return list(zip(texts, results, strict=True))
