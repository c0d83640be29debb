"""Batched beam search with a key/value cache; beam 1 is greedy decoding.

The same code translates test sets and writes synthetic training data, so a generator's output and
a student's test translations come from one decoder.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

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


@dataclass
class _Beams:
    """The sentences still searched, k rows each, and what their next decoder step reads."""

    alive: list[int]  # the sentence each group of k rows belongs to
    tokens: Tensor  # (rows, steps + 1): BOS and the tokens chosen so far
    scores: Tensor  # (sentences, k): the log-probability of each beam
    memory_kv: list[tuple[Tensor, Tensor]]  # the source's keys and values, per decoder layer
    mask: Tensor  # the source padding mask, per row
    cache: dict  # the decoder's keys and values of earlier target positions, per layer


@dataclass
class _Candidates:
    """The 2k best continuations of each sentence, best first, (sentences, 2k) each."""

    scores: Tensor  # the beam's score plus the new token's log-probability
    beam: Tensor  # the beam (0 to k-1) that each continues
    tokens: Tensor  # the token that each adds
    is_eos: Tensor  # whether it ends its hypothesis (finite scores only)


@torch.no_grad()
def beam_search(
    model: Transformer, src: Tensor, cfg: DecodeConfig, bos_id: int, eos_id: int
) -> list[Hypothesis]:
    """Translate a padded batch of sources (batch, src_len); returns the best hypothesis of each."""
    k, n_sent = cfg.beam, src.shape[0]
    limits = length_limits(src, model.cfg.pad_id, cfg, model.positions.shape[0]).tolist()
    beams = _start(model, src, k, bos_id)
    finished: list[list[tuple[float, Hypothesis]]] = [[] for _ in range(n_sent)]
    closed = [False] * n_sent  # a closed sentence takes no more hypotheses
    banned = torch.tensor([model.cfg.pad_id, bos_id], device=src.device)
    for step in range(max(limits)):
        logits = model.decode(
            beams.tokens[:, -1:], beams.memory_kv, beams.mask, beams.cache, offset=step
        )[:, -1].float()
        logits.index_fill_(1, banned, float("-inf"))  # never part of a translation
        at_limit = [step + 1 >= limits[s] for s in beams.alive]
        cand = _expand(logits, beams.scores, at_limit, k, eos_id)
        _collect_finished(cand, beams, at_limit, finished, closed, cfg)
        beams = _select_next(cand, beams, k)

        for r, s in enumerate(beams.alive):
            closed[s] = closed[s] or len(finished[s]) >= k or at_limit[r]
        done = [closed[s] for s in beams.alive]
        if all(done):
            break
        # Finished sentences leave the batch once they are a quarter of it: removing them costs
        # a copy of every cache, so it waits until that is cheaper than decoding them on. A
        # finished sentence that stays is closed: it adds no hypotheses and is not read.
        if sum(done) * 4 >= len(done):
            beams = _drop_finished(beams, done, k)

    return [max(hyps, key=lambda item: item[0])[1] for hyps in finished]


def _start(model: Transformer, src: Tensor, k: int, bos_id: int) -> _Beams:
    """Encode the sources once and give each sentence k rows, all at BOS."""
    n_sent = src.shape[0]
    memory, mask = model.encode(src)
    memory, mask = memory.repeat_interleave(k, 0), mask.repeat_interleave(k, 0)
    # Contiguous once here, instead of a copy inside every step's attention.
    memory_kv = [(mk.contiguous(), mv.contiguous()) for mk, mv in model.memory_kv(memory)]
    tokens = torch.full((n_sent * k, 1), bos_id, dtype=torch.long, device=src.device)
    scores = torch.zeros(n_sent, k, device=src.device)
    scores[:, 1:] = float("-inf")  # all beams start identical: keep one
    return _Beams(list(range(n_sent)), tokens, scores, memory_kv, mask, cache={})


def _expand(
    logits: Tensor, scores: Tensor, at_limit: list[bool], k: int, eos_id: int
) -> _Candidates:
    """Rank the continuations of every beam by beam score plus token log-probability and keep the
    2k best of each sentence: k of them at least do not end, enough to refill the beams. A row
    at its length limit may only end: its one candidate is a forced EOS."""
    n = scores.shape[0]
    # The 2k best continuations of each beam hold the 2k best of its sentence: ranking
    # those alone spares a log-softmax and a sum over the whole vocabulary per row.
    cand_logits, cand_tok = logits.topk(2 * k, dim=1)
    cand_logp = cand_logits - logits.logsumexp(dim=1, keepdim=True)
    if any(at_limit):
        ended = torch.tensor(at_limit, device=logits.device).repeat_interleave(k)
        eos_logp = logits[ended, eos_id] - logits[ended].logsumexp(dim=1)
        cand_logp[ended] = float("-inf")
        cand_logp[ended, 0] = eos_logp
        cand_tok[ended, 0] = eos_id

    total = scores.unsqueeze(-1) + cand_logp.view(n, k, 2 * k)
    top_scores, top_idx = total.view(n, -1).topk(2 * k, dim=1)
    top_tok = cand_tok.view(n, -1).gather(1, top_idx)
    is_eos = (top_tok == eos_id) & torch.isfinite(top_scores)
    return _Candidates(top_scores, top_idx // (2 * k), top_tok, is_eos)


def _collect_finished(
    cand: _Candidates,
    beams: _Beams,
    at_limit: list[bool],
    finished: list[list[tuple[float, Hypothesis]]],
    closed: list[bool],
    cfg: DecodeConfig,
) -> None:
    """Hypotheses ending among the k best candidates are complete: add them, with their
    length-normalised score, to `finished` of their sentence unless it is closed or has k."""
    k = cfg.beam
    for r, c in cand.is_eos[:, :k].nonzero().tolist():
        sent = beams.alive[r]
        if not closed[sent] and len(finished[sent]) < k:
            row = r * k + int(cand.beam[r, c])
            raw = float(cand.scores[r, c])
            hyp = Hypothesis(beams.tokens[row, 1:].tolist(), raw, finished=not at_limit[r])
            finished[sent].append((raw / (len(hyp.tokens) + 1) ** cfg.length_penalty, hyp))


def _select_next(cand: _Candidates, beams: _Beams, k: int) -> _Beams:
    """The k best candidates of each sentence that do not end become its beams."""
    n, device = len(beams.alive), beams.tokens.device
    # Candidates come best first: ranking the ending ones behind all others and taking the k
    # lowest ranks keeps the best k that go on, in order.
    rank = cand.is_eos.long() * (2 * k) + torch.arange(2 * k, device=device)
    keep = rank.topk(k, dim=1, largest=False).indices
    scores = cand.scores.gather(1, keep)
    rows = torch.arange(n, device=device).unsqueeze(1) * k + cand.beam.gather(1, keep)
    rows = rows.view(-1)
    tokens = torch.cat([beams.tokens[rows], cand.tokens.gather(1, keep).view(-1, 1)], dim=1)
    if k > 1:  # with one beam each row continues itself: nothing to reorder
        _reorder_cache(beams.cache, rows)
    return replace(beams, tokens=tokens, scores=scores)


def _reorder_cache(cache: dict, rows: Tensor) -> None:
    """Make the decoder's cached keys and values follow `rows`, in place: row i of the next step
    continues row rows[i] of this one."""
    for key, (ck, cv) in cache.items():
        cache[key] = (ck[rows], cv[rows])


def _drop_finished(beams: _Beams, done: list[bool], k: int) -> _Beams:
    """Remove the rows of the sentences that are done from the batch (and from the cache)."""
    device = beams.tokens.device
    groups = torch.tensor([r for r, d in enumerate(done) if not d], device=device)
    rows = (groups.unsqueeze(1) * k + torch.arange(k, device=device)).view(-1)
    _reorder_cache(beams.cache, rows)
    return _Beams(
        alive=[beams.alive[r] for r in groups.tolist()],
        tokens=beams.tokens[rows],
        scores=beams.scores[groups],
        memory_kv=[(mk[rows], mv[rows]) for mk, mv in beams.memory_kv],
        mask=beams.mask[rows],
        cache=beams.cache,
    )


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
