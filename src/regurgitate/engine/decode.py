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
from regurgitate.engine.model import KVCache, Transformer
from regurgitate.engine.progress import Progress, fraction, time_left

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
    """The sentences still searched, b rows (beams) each, and what their next decoder step reads.
    All beams of a sentence start identical, so the first step has one row per sentence, the
    later ones k."""

    alive: list[int]  # the sentence each group of b rows belongs to
    tokens: Tensor  # (rows, steps + 1): BOS and the tokens chosen so far
    scores: Tensor  # (sentences, b): the log-probability of each beam
    memory_kv: list[tuple[Tensor, Tensor]]  # the source's keys and values, per decoder layer
    mask: Tensor  # the source padding mask, per row
    cache: KVCache  # the decoder's keys and values of earlier target positions


@dataclass
class _Candidates:
    """The 2k best continuations of each sentence, best first, (sentences, 2k) each."""

    scores: Tensor  # the beam's score plus the new token's log-probability
    beam: Tensor  # the beam (0 to b-1) that each continues
    tokens: Tensor  # the token that each adds
    is_eos: Tensor  # whether it ends its hypothesis (finite scores only)


@torch.inference_mode()
def beam_search(
    model: Transformer, src: Tensor, cfg: DecodeConfig, bos_id: int, eos_id: int
) -> list[Hypothesis]:
    """Translate a padded batch of sources (batch, src_len); returns the best hypothesis of each."""
    k, n_sent = cfg.beam, src.shape[0]
    limits = length_limits(src, model.cfg.pad_id, cfg, model.positions.shape[0]).tolist()
    beams = _start(model, src, bos_id, max(limits))
    finished: list[list[tuple[float, Hypothesis]]] = [[] for _ in range(n_sent)]
    banned = torch.tensor([model.cfg.pad_id, bos_id], device=src.device)
    for step in range(max(limits)):
        logits = model.decode(beams.tokens[:, -1:], beams.memory_kv, beams.mask, beams.cache)
        logits = logits[:, -1].float()
        logits.index_fill_(1, banned, float("-inf"))  # never part of a translation
        at_limit = [step + 1 >= limits[s] for s in beams.alive]
        cand = _expand(logits, beams.scores, at_limit, k, eos_id)
        _collect_finished(cand, beams, at_limit, finished, cfg)
        done = [len(finished[s]) >= k or at_limit[r] for r, s in enumerate(beams.alive)]
        if all(done):
            break
        beams = _select_next(cand, beams, done, k)

    return [max(hyps, key=lambda item: item[0])[1] for hyps in finished]


def _start(model: Transformer, src: Tensor, bos_id: int, max_len: int) -> _Beams:
    """Encode the sources once; one row per sentence, at BOS, and a key/value cache for
    `max_len` steps."""
    n_sent = src.shape[0]
    memory, mask = model.encode(src)
    # Contiguous once here, instead of a copy inside every step's attention.
    memory_kv = [(mk.contiguous(), mv.contiguous()) for mk, mv in model.memory_kv(memory)]
    tokens = torch.full((n_sent, 1), bos_id, dtype=torch.long, device=src.device)
    scores = torch.zeros(n_sent, 1, device=src.device)
    return _Beams(list(range(n_sent)), tokens, scores, memory_kv, mask, model.kv_cache(max_len))


def _expand(
    logits: Tensor, scores: Tensor, at_limit: list[bool], k: int, eos_id: int
) -> _Candidates:
    """Rank the continuations of every beam by beam score plus token log-probability and keep the
    2k best of each sentence: k of them at least do not end, enough to fill k beams. A row
    at its length limit may only end: its one candidate is a forced EOS."""
    n, b = scores.shape
    # The fused log_softmax kernel takes half the time of logsumexp (three passes) on CPU.
    logp = logits.log_softmax(dim=1)
    # The 2k best continuations of each beam hold the 2k best of its sentence: ranking
    # those alone spares adding the beam score to the whole vocabulary per row.
    cand_logp, cand_tok = logp.topk(2 * k, dim=1)
    if any(at_limit):
        # The ended rows by index, made on the host: a boolean mask would make the host wait
        # for the device to count it.
        ended = [r * b + j for r, limit in enumerate(at_limit) if limit for j in range(b)]
        ended = torch.tensor(ended, device=logits.device)
        eos_logp = logp[:, eos_id].index_select(0, ended)
        cand_logp.index_fill_(0, ended, float("-inf"))
        cand_logp[:, 0].index_copy_(0, ended, eos_logp)
        cand_tok[:, 0].index_fill_(0, ended, eos_id)

    total = scores.unsqueeze(-1) + cand_logp.view(n, b, 2 * k)
    top_scores, top_idx = total.view(n, -1).topk(2 * k, dim=1)
    top_tok = cand_tok.view(n, -1).gather(1, top_idx)
    is_eos = (top_tok == eos_id) & torch.isfinite(top_scores)
    return _Candidates(top_scores, top_idx // (2 * k), top_tok, is_eos)


def _collect_finished(
    cand: _Candidates,
    beams: _Beams,
    at_limit: list[bool],
    finished: list[list[tuple[float, Hypothesis]]],
    cfg: DecodeConfig,
) -> None:
    """Hypotheses ending among the k best candidates are complete: add them, with their
    length-normalised score, to `finished` of their sentence unless it has k."""
    k, b = cfg.beam, beams.scores.shape[1]
    ends = cand.is_eos[:, :k].nonzero()  # the one wait for the device in a step that ends none
    hits = ends.tolist()
    if not hits:
        return
    # Everything the ending hypotheses need, read in three transfers, not three per hypothesis.
    r, c = ends.unbind(1)
    rows = r * b + cand.beam[r, c]
    raws = cand.scores[r, c].tolist()
    tokens = beams.tokens.index_select(0, rows)[:, 1:].tolist()
    for (r, _), raw, hyp_tokens in zip(hits, raws, tokens, strict=True):
        sent = beams.alive[r]
        if len(finished[sent]) < k:
            hyp = Hypothesis(hyp_tokens, raw, finished=not at_limit[r])
            finished[sent].append((raw / (len(hyp.tokens) + 1) ** cfg.length_penalty, hyp))


def _select_next(cand: _Candidates, beams: _Beams, done: list[bool], k: int) -> _Beams:
    """The k best candidates that do not end become the beams of each sentence; the sentences
    that are done leave the batch at once (the cache moves its rows at every step of a beam
    search anyway, and the rest costs less than decoding finished rows on)."""
    n, b = beams.scores.shape
    device = beams.tokens.device
    # Candidates come best first: ranking the ending ones behind all others and taking the k
    # lowest ranks keeps the best k that go on, in order.
    rank = cand.is_eos.long() * (2 * k) + torch.arange(2 * k, device=device)
    keep = rank.topk(k, dim=1, largest=False).indices
    # rows[s, j]: the row of this step that beam j of sentence s continues.
    rows = torch.arange(n, device=device).unsqueeze(1) * b + cand.beam.gather(1, keep)
    scores, last = cand.scores.gather(1, keep), cand.tokens.gather(1, keep)
    alive = beams.alive
    if any(done):
        staying = [r for r, d in enumerate(done) if not d]
        going = torch.tensor(staying, device=device)
        # index_select: advanced indexing (tensor[index]) is several times slower on CPU.
        rows, scores, last = (t.index_select(0, going) for t in (rows, scores, last))
        alive = [alive[r] for r in staying]
    rows = rows.view(-1)
    tokens = torch.cat([beams.tokens.index_select(0, rows), last.view(-1, 1)], dim=1)
    memory_kv, mask = beams.memory_kv, beams.mask
    # Sentences left, or the first step's one row per sentence became k. (Comparing row counts
    # would not do: at the first step, k rows each of fewer sentences can be as many rows.)
    if any(done) or b != k:
        memory_kv = [(mk.index_select(0, rows), mv.index_select(0, rows)) for mk, mv in memory_kv]
        mask = mask.index_select(0, rows)
    if k > 1 or any(done):  # with one beam and none leaving, each row continues itself
        beams.cache.select(rows)
    return _Beams(alive, tokens, scores, memory_kv, mask, beams.cache)


def decode_batches(lengths: list[int], max_tokens: int, beam: int) -> list[list[int]]:
    """Indices grouped by similar source length so that a batch holds little padding."""
    order = np.argsort(np.asarray(lengths), kind="stable").tolist()
    return budget_batches(order, lengths, max_tokens, width=beam)


@torch.inference_mode()
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

    `progress`, when given, names the job in periodic log lines (sentences done of all, the
    time left, sentences/s).
    """
    model.eval()
    device = next(model.parameters()).device
    max_src = model.positions.shape[0] - 1
    encoded = [ids[: max_src - 1] + [tokenizer.eos_id] for ids in tokenizer.encode(sources)]
    lengths = [len(e) for e in encoded]
    batches = decode_batches(lengths, cfg.max_tokens, cfg.beam)
    results: list[Hypothesis | None] = [None] * len(sources)
    start, done, next_report = time.perf_counter(), 0, 0.1
    # The time left counts source tokens, not sentences: batches come shortest first, and a
    # sentence takes longer the longer it is.
    pace, work_done = Progress(sum(lengths)), 0
    for indices in batches:
        src = pad([encoded[i] for i in indices], tokenizer.pad_id).to(device)
        with autocast_context(device, bf16):
            hyps = beam_search(model, src, cfg, tokenizer.bos_id, tokenizer.eos_id)
        for i, hyp in zip(indices, hyps, strict=True):
            results[i] = hyp
        done += len(indices)
        work_done += sum(lengths[i] for i in indices)
        if progress and done / len(sources) >= next_report:
            rate = done / (time.perf_counter() - start)
            log.info(
                "%s: sentences %s, %s (%.1f sentences/s)",
                progress,
                fraction(done, len(sources)),
                time_left(pace.seconds_left(work_done)),
                rate,
            )
            next_report += 0.1
    texts = tokenizer.decode([h.tokens for h in results])
    return list(zip(texts, results, strict=True))
