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
from torch import Tensor

from regurgitate.engine.batching import budget_batches, pad
from regurgitate.engine.device import autocast_context
from regurgitate.engine.model import Transformer

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
    # Contiguous once here, instead of a copy inside every step's attention.
    memory_kv = [(mk.contiguous(), mv.contiguous()) for mk, mv in model.memory_kv(memory)]

    alive = list(range(n_sent))  # the sentence each group of k rows belongs to
    tokens = torch.full((n_sent * k, 1), bos_id, dtype=torch.long, device=src.device)
    scores = torch.zeros(n_sent, k, device=src.device)
    scores[:, 1:] = float("-inf")  # all beams start identical: keep one
    finished: list[list[tuple[float, Hypothesis]]] = [[] for _ in range(n_sent)]
    closed = [False] * n_sent  # a closed sentence takes no more hypotheses
    cache: dict = {}
    offsets = torch.arange(k, device=src.device)

    banned = torch.tensor([model.cfg.pad_id, bos_id], device=src.device)
    for step in range(max(limits)):
        logits = model.decode(tokens[:, -1:], memory_kv, mask, cache, offset=step)[:, -1].float()
        logits.index_fill_(1, banned, float("-inf"))  # never part of a translation
        n = len(alive)
        at_limit_list = [step + 1 >= limits[s] for s in alive]
        at_limit = torch.tensor(at_limit_list, device=src.device)
        # The 2k best continuations of each beam hold the 2k best of its sentence: ranking
        # those alone spares a log-softmax and a sum over the whole vocabulary per row.
        cand_logits, cand_tok = logits.topk(2 * k, dim=1)
        cand_logp = cand_logits - logits.logsumexp(dim=1, keepdim=True)
        if any(at_limit_list):
            ended = at_limit.repeat_interleave(k)
            eos_logp = logits[ended, eos_id] - logits[ended].logsumexp(dim=1)
            cand_logp[ended] = float("-inf")
            cand_logp[ended, 0] = eos_logp
            cand_tok[ended, 0] = eos_id

        total = scores.unsqueeze(-1) + cand_logp.view(n, k, 2 * k)
        top_scores, top_idx = total.view(n, -1).topk(2 * k, dim=1)
        top_beam = top_idx // (2 * k)
        top_tok = cand_tok.view(n, -1).gather(1, top_idx)
        is_eos = (top_tok == eos_id) & torch.isfinite(top_scores)

        # Hypotheses ending among the k best candidates are complete.
        for r, c in is_eos[:, :k].nonzero().tolist():
            sent = alive[r]
            if not closed[sent] and len(finished[sent]) < k:
                row = r * k + int(top_beam[r, c])
                raw = float(top_scores[r, c])
                hyp = Hypothesis(tokens[row, 1:].tolist(), raw, finished=not at_limit_list[r])
                finished[sent].append((raw / (len(hyp.tokens) + 1) ** cfg.length_penalty, hyp))

        # The k best candidates that do not end go on.
        rank = is_eos.long() * (2 * k) + torch.arange(2 * k, device=src.device)
        keep = rank.topk(k, dim=1, largest=False).indices
        scores = top_scores.gather(1, keep)
        rows = torch.arange(n, device=src.device).unsqueeze(1) * k + top_beam.gather(1, keep)
        rows = rows.view(-1)
        tokens = torch.cat([tokens[rows], top_tok.gather(1, keep).view(-1, 1)], dim=1)
        if k > 1:  # with one beam each row continues itself: nothing to reorder
            for key, (ck, cv) in cache.items():
                cache[key] = (ck[rows], cv[rows])

        for r, s in enumerate(alive):
            closed[s] = closed[s] or len(finished[s]) >= k or at_limit_list[r]
        done = [closed[s] for s in alive]
        if all(done):
            break
        # Finished sentences leave the batch once they are a quarter of it: removing them costs
        # a copy of every cache, so it waits until that is cheaper than decoding them on. A
        # finished sentence that stays is closed: it adds no hypotheses and is not read.
        if sum(done) * 4 >= len(done):
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
