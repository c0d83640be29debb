"""Batched beam search with a key/value cache; beam 1 is greedy decoding.

The same code translates test sets and writes synthetic training data, so a generator's output and
a student's test translations come from one decoder. What its speed comes from, and what did not
pay, is in BENCHMARKS.md (decoding).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.profiler import record_function

from regurgitate.engine.batching import budget_batches, pad
from regurgitate.engine.device import autocast_context
from regurgitate.engine.model import Transformer
from regurgitate.engine.progress import Progress, fraction, time_left

log = logging.getLogger(__name__)

# The profiler's label of one step of a search (benchmarks/decode_speed.py --syncs).
STEP_LABEL = "decode.step"

# The next batch of sources joins a search under way once the sentences left in it hold at most
# JOIN_AT x DecodeConfig.max_tokens (each its batch's source length x beam): a search's last
# steps, with few sentences left, cost nearly as much as full ones (much of a step's cost does
# not grow with its rows), so they are shared with the next batch's first ones. The search then
# holds up to (1 + JOIN_AT) x max_tokens; 0 decodes batch after batch.
JOIN_AT = 1.0


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


class _Cohort:
    """Sentences that started their search together, at one target position: their source's
    cross-attention keys and values, once per sentence, and their rows' key/value cache."""

    def __init__(self, model: Transformer, src: Tensor, max_len: int):
        memory, mask = model.encode(src)
        # (sentences, heads, src_len, head_dim) each, contiguous once here.
        self.memory = [
            tuple(t.contiguous() for t in layer.cross_attn.project_kv(memory))
            for layer in model.decoder
        ]
        self.blocked = ~mask  # (sentences, 1, 1, src_len): padding, never attended to
        self.cache = model.kv_cache(max_len)
        self.sentences = src.shape[0]

    def attend_self(self, q: Tensor, k: Tensor, v: Tensor, layer: int) -> Tensor:
        """Causal self-attention of one new position per row, the earlier ones cached; q, k, v
        (rows, heads, 1, head_dim)."""
        keys, values = self.cache.write(layer, k, v)
        scores = torch.matmul(q, keys.transpose(-1, -2)) * q.shape[-1] ** -0.5
        return torch.matmul(scores.softmax(dim=-1), values)

    def attend_memory(self, q: Tensor, layer: int, beams: int) -> Tensor:
        """Attention.forward_cross's attention, the beams of a sentence together; q (rows,
        heads, head_dim) -> (rows, heads, head_dim)."""
        rows, heads, head_dim = q.shape
        keys, values = self.memory[layer]
        # (sentences, heads, beams, head_dim): a sentence's beams query its memory together.
        q = q.view(self.sentences, beams, heads, head_dim).transpose(1, 2)
        scores = torch.matmul(q, keys.transpose(-1, -2)) * head_dim**-0.5
        scores.masked_fill_(self.blocked, float("-inf"))
        return torch.matmul(scores.softmax(dim=-1), values).transpose(1, 2)

    def select(self, rows: Tensor, sentences: list[int] | None) -> None:
        """Row i continues row rows[i]; with `sentences`, only those stay, with their memory."""
        if sentences is not None:
            index = torch.tensor(sentences, device=rows.device)
            # index_select: advanced indexing (tensor[index]) is several times slower on CPU.
            self.memory = [
                (k.index_select(0, index), v.index_select(0, index)) for k, v in self.memory
            ]
            self.blocked = self.blocked.index_select(0, index)
            self.sentences = len(sentences)
        self.cache.select(rows)


def _cat(parts: list[Tensor]) -> Tensor:
    return parts[0] if len(parts) == 1 else torch.cat(parts)


class _Decoder:
    """The model's decoder, one target position per step for all beams of all sentences: the
    function of `Transformer.decode_states` and the tied vocabulary projection (in evaluation
    mode) with a key/value cache, computed on the model's own layers and weights in the shapes
    beam search has.

    - The source's cross-attention keys and values are held once per sentence, not per beam:
      the b beams of a sentence are b queries against one memory (one product of b rows per
      sentence and head, instead of b products of one row), and moving beams never moves the
      memory; sentences that leave take their one copy with them.
    - Sentences that start later (the next batch, JOIN_AT) join as a cohort of their own, with
      their own position, cache and memory: every product of rows by weights (the projections,
      the feed-forward layers, the vocabulary) is made once for the rows of all cohorts, and
      attention per cohort, as if it were alone.
    - The logits go to one buffer for the whole search: a fresh vocabulary-sized tensor every
      step costs its allocation (page faults) and is then written, not only filled.
    """

    def __init__(self, model: Transformer, src: Tensor, max_len: int, banned: list[int]):
        self.model = model
        self.cohorts = [_Cohort(model, src, max_len)]
        self.banned = torch.tensor(banned, device=src.device)
        self.logits: Tensor | None = None

    def step(self, last: Tensor, beams: int) -> Tensor:
        """Logits (rows, vocab), fp32, of the next position of every row, in a buffer that the
        next step overwrites. `last` (rows,) are the tokens at the rows' next positions; rows
        are sentence-major, `beams` rows per sentence, cohort after cohort."""
        model, cohorts = self.model, self.cohorts
        rows = [c.sentences * beams for c in cohorts]
        x = _cat(
            [
                model.embed_tokens(t.unsqueeze(1), c.cache.length)[:, 0]
                for c, t in zip(cohorts, last.split(rows), strict=True)
            ]
        )
        d = x.shape[1]
        for i, layer in enumerate(model.decoder):
            attn = layer.self_attn
            qkv = attn.qkv(layer.norm1(x)).view(-1, 3, attn.heads, 1, d // attn.heads)
            y = [
                c.attend_self(*part.unbind(1), i)
                for c, part in zip(cohorts, qkv.split(rows), strict=True)
            ]
            x = x + attn.out(_cat(y).view(-1, d))
            attn = layer.cross_attn
            q = attn.q(layer.norm2(x)).view(-1, attn.heads, d // attn.heads)
            y = [
                c.attend_memory(part, i, beams)
                for c, part in zip(cohorts, q.split(rows), strict=True)
            ]
            x = x + attn.out(_cat(y).reshape(-1, d))
            x = x + layer.ffn(layer.norm3(x))
        for c in cohorts:
            c.cache.length += 1
        states = model.decoder_norm(x)
        weight = model.embed.weight
        if self.logits is None or self.logits.shape[0] < states.shape[0]:
            self.logits = weight.new_empty((states.shape[0], weight.shape[0]), dtype=torch.float32)
        logits = self.logits[: states.shape[0]]
        if torch.is_autocast_enabled(states.device.type):  # the product in bf16, then fp32
            logits.copy_(F.linear(states, weight))
        else:
            torch.mm(states, weight.t(), out=logits)
        logits.index_fill_(1, self.banned, float("-inf"))  # never part of a translation
        return logits

    def select(self, rows: Tensor, staying: list[int] | None, beams: int) -> None:
        """rows (sentences, k): the row of the last step (`beams` rows per sentence) that each
        new beam continues; `staying`: the sentences that stay, in order (None: all)."""
        cohorts, first, at = [], 0, 0  # first: a cohort's first sentence in the last step
        for c in self.cohorts:
            before, mine = c.sentences, None
            if staying is not None:
                mine = [s - first for s in staying if first <= s < first + before]
            count = before if mine is None else len(mine)
            if count:
                c.select((rows[at : at + count] - first * beams).view(-1), mine)
                cohorts.append(c)
            first, at = first + before, at + count
        self.cohorts = cohorts

    def join(self, other: _Decoder) -> None:
        """Append the cohorts of `other` after these."""
        self.cohorts += other.cohorts


@dataclass
class _Beams:
    """The sentences searched, b rows (beams) each. All beams of a sentence start identical, so
    its first step has one row, the later ones k."""

    alive: list[int]  # the sentences, by their index among all searched
    positions: list[int]  # per sentence, its tokens so far (the position its next step reads)
    # (rows, width): BOS and the tokens so far of each row, right-aligned (the last column
    # holds the last tokens); a sentence that joined later has fewer, padded on the left.
    tokens: Tensor
    scores: Tensor  # (sentences, b): the log-probability of each beam
    decoder: _Decoder


@dataclass
class _Candidates:
    """The 2k best continuations of each sentence, best first, (sentences, 2k) each."""

    scores: Tensor  # the beam's score plus the new token's log-probability
    beam: Tensor  # the beam (0 to b-1) that each continues
    tokens: Tensor  # the token that each adds
    is_eos: Tensor  # whether it ends its hypothesis (finite scores only)


def _expand(
    logits: Tensor, scores: Tensor, at_limit: list[bool], k: int, eos_id: int
) -> _Candidates:
    """Rank the continuations of every beam by beam score plus token log-probability and keep the
    2k best of each sentence: k of them at least do not end, enough to fill k beams. A row
    at its length limit may only end: its one candidate is a forced EOS. `logits` are
    overwritten."""
    n, b = scores.shape
    # The 2k best continuations of each beam hold the 2k best of its sentence: ranking
    # those alone spares adding the beam score to the whole vocabulary per row. The softmax
    # keeps the order, so the 2k are the largest logits.
    cand_logit, cand_tok = _top_logits(logits, 2 * k)
    # The log-softmax at those and at EOS alone, x - max - log(sum(exp(x - max))) as
    # torch.log_softmax computes it, with the sum made in place: no vocabulary-sized output.
    top = cand_logit[:, :1]
    eos_logit = logits[:, eos_id] - top[:, 0]
    log_z = logits.sub_(top).exp_().sum(dim=1, keepdim=True).log_()
    cand_logp = (cand_logit - top) - log_z
    if any(at_limit):
        # The ended rows by index, made on the host: a boolean mask would make the host wait
        # for the device to count it.
        ended = [r * b + j for r, limit in enumerate(at_limit) if limit for j in range(b)]
        ended = torch.tensor(ended, device=logits.device)
        eos_logp = (eos_logit - log_z[:, 0]).index_select(0, ended)
        cand_logp.index_fill_(0, ended, float("-inf"))
        cand_logp[:, 0].index_copy_(0, ended, eos_logp)
        cand_tok[:, 0].index_fill_(0, ended, eos_id)

    total = scores.unsqueeze(-1) + cand_logp.view(n, b, 2 * k)
    top_scores, top_idx = total.view(n, -1).topk(2 * k, dim=1)
    top_tok = cand_tok.view(n, -1).gather(1, top_idx)
    is_eos = (top_tok == eos_id) & torch.isfinite(top_scores)
    return _Candidates(top_scores, top_idx // (2 * k), top_tok, is_eos)


def _block_size(vocab: int, n: int) -> int | None:
    """The block size of _top_logits for a vocabulary: the largest divisor of `vocab` up to 48
    that leaves at least 4n blocks; None (plain topk) where that is under 8."""
    for size in range(48, 7, -1):
        if vocab % size == 0 and vocab // size >= 4 * n:
            return size
    return None


def _top_logits(logits: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """The n largest values of each row, largest first, and their columns: torch.topk's answer
    (which of equal values aside), in about a tenth of its time on a CPU. The n largest
    values lie in the n blocks of the row with the largest maxima (a value outside them is
    beaten by those n maxima), so one pass of block maxima and two small top-k find them."""
    rows, vocab = logits.shape
    size = _block_size(vocab, n)
    if size is None:
        return logits.topk(n, dim=1)
    blocks = logits.view(rows, vocab // size, size).amax(dim=2).topk(n, dim=1).indices
    offsets = torch.arange(size, device=logits.device)
    columns = (blocks.unsqueeze(2) * size + offsets).view(rows, n * size)
    values, which = logits.gather(1, columns).topk(n, dim=1)
    return values, columns.gather(1, which)


def _collect_finished(
    cand: _Candidates,
    beams: _Beams,
    at_limit: list[bool],
    finished: dict[int, list[tuple[float, Hypothesis]]],
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
    tokens = beams.tokens.index_select(0, rows).tolist()
    for (r, _), raw, row in zip(hits, raws, tokens, strict=True):
        sent = beams.alive[r]
        if len(finished[sent]) < k:
            hyp = Hypothesis(row[len(row) - beams.positions[r] :], raw, finished=not at_limit[r])
            finished[sent].append((raw / (len(hyp.tokens) + 1) ** cfg.length_penalty, hyp))


def _select_next(cand: _Candidates, beams: _Beams, done: list[bool], k: int) -> None:
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
    going = staying = None
    if any(done):
        staying = [r for r, d in enumerate(done) if not d]
        going = torch.tensor(staying, device=device)
        # index_select: advanced indexing (tensor[index]) is several times slower on CPU.
        rows, scores, last = (t.index_select(0, going) for t in (rows, scores, last))
        beams.alive = [beams.alive[r] for r in staying]
        beams.positions = [beams.positions[r] for r in staying]
    beams.positions = [p + 1 for p in beams.positions]
    width = max(beams.positions) + 1  # the longest row's BOS and tokens
    tokens = beams.tokens[:, beams.tokens.shape[1] + 1 - width :].index_select(0, rows.view(-1))
    beams.tokens = torch.cat([tokens, last.view(-1, 1)], dim=1)
    beams.scores = scores
    if k > 1 or going is not None:  # with one beam and none leaving, each row continues itself
        beams.decoder.select(rows, staying, b)


def _start(model: Transformer, src: Tensor, first: int, capacity: int, bos_id: int) -> _Beams:
    """Encode a batch of sources, the sentences `first`, `first` + 1, ...: one row per
    sentence, at BOS."""
    n = src.shape[0]
    decoder = _Decoder(model, src, capacity, [model.cfg.pad_id, bos_id])
    tokens = torch.full((n, 1), bos_id, dtype=torch.long, device=src.device)
    scores = torch.zeros(n, 1, device=src.device)
    return _Beams(list(range(first, first + n)), [0] * n, tokens, scores, decoder)


def _step(
    beams: _Beams,
    limits: list[int],
    finished: dict[int, list[tuple[float, Hypothesis]]],
    cfg: DecodeConfig,
    eos_id: int,
) -> list[int]:
    """One step of every sentence of `beams`; returns those it finished, which leave `beams`."""
    k, (n, b) = cfg.beam, beams.scores.shape
    with record_function(STEP_LABEL):
        logits = beams.decoder.step(beams.tokens[:, -1], b)
        at_limit = [p + 1 >= limits[s] for s, p in zip(beams.alive, beams.positions, strict=True)]
        cand = _expand(logits, beams.scores, at_limit, k, eos_id)
        _collect_finished(cand, beams, at_limit, finished, cfg)
        done = [len(finished[s]) >= k or at_limit[r] for r, s in enumerate(beams.alive)]
        ended = [s for s, d in zip(beams.alive, done, strict=True) if d]
        if len(ended) == n:
            beams.alive = []
        else:
            _select_next(cand, beams, done, k)
    return ended


def _join(main: _Beams, other: _Beams) -> _Beams:
    """The sentences of both searches, in one; both past their first step (k beams each)."""
    width = max(main.tokens.shape[1], other.tokens.shape[1])
    # Padded on the left with zeros, never read.
    tokens = [
        torch.cat([t.new_zeros(t.shape[0], width - t.shape[1]), t], 1)
        for t in (main.tokens, other.tokens)
    ]
    main.decoder.join(other.decoder)
    return _Beams(
        main.alive + other.alive,
        main.positions + other.positions,
        torch.cat(tokens),
        torch.cat([main.scores, other.scores]),
        main.decoder,
    )


@torch.inference_mode()
def _search(
    model: Transformer, batches: Iterable[Tensor], cfg: DecodeConfig, bos_id: int, eos_id: int
) -> Iterator[tuple[int, Hypothesis]]:
    """Beam search over padded batches of sources (sentences, src_len), taken from `batches` as
    they are needed; yields (index, best hypothesis) of each sentence as it finishes, indices
    counting the sentences of all batches in order. A batch joins the search under way
    (JOIN_AT) after a first step of its own, where each of its sentences has one row, as a
    cohort of its own (_Decoder)."""
    limits: list[int] = []
    loads: list[int] = []  # per sentence, its batch's source length x beam
    finished: dict[int, list[tuple[float, Hypothesis]]] = {}
    beams: _Beams | None = None
    waiting = iter(batches)
    while True:
        src = None
        if beams is None or sum(loads[s] for s in beams.alive) <= JOIN_AT * cfg.max_tokens:
            src = next(waiting, None)
        if src is not None:
            first = len(limits)
            loads += [src.shape[1] * cfg.beam] * src.shape[0]
            batch_limits = length_limits(src, model.cfg.pad_id, cfg, model.positions.shape[0])
            limits += batch_limits.tolist()
            finished.update((s, []) for s in range(first, len(limits)))
            joining = _start(model, src, first, max(limits[first:]), bos_id)
            for s in _step(joining, limits, finished, cfg, eos_id):
                yield s, _best(finished.pop(s))
            if joining.alive:
                beams = joining if beams is None else _join(beams, joining)
            continue
        if beams is None:
            return
        for s in _step(beams, limits, finished, cfg, eos_id):
            yield s, _best(finished.pop(s))
        if not beams.alive:
            beams = None


def _best(hyps: list[tuple[float, Hypothesis]]) -> Hypothesis:
    return max(hyps, key=lambda item: item[0])[1]


@torch.inference_mode()
def beam_search(
    model: Transformer, src: Tensor, cfg: DecodeConfig, bos_id: int, eos_id: int
) -> list[Hypothesis]:
    """Translate a padded batch of sources (batch, src_len); returns the best hypothesis of each."""
    results: list[Hypothesis | None] = [None] * src.shape[0]
    for s, hyp in _search(model, [src], cfg, bos_id, eos_id):
        results[s] = hyp
    return results


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
    padded = (
        pad([encoded[i] for i in indices], tokenizer.pad_id).to(device) for indices in batches
    )
    order = [i for indices in batches for i in indices]  # search index -> input index
    results: list[Hypothesis | None] = [None] * len(sources)
    start, next_report = time.perf_counter(), 0.1
    # The time left counts source tokens, not sentences: batches come shortest first, and a
    # sentence takes longer the longer it is.
    pace, work_done = Progress(sum(lengths)), 0
    with autocast_context(device, bf16):
        found = _search(model, padded, cfg, tokenizer.bos_id, tokenizer.eos_id)
        for done, (s, hyp) in enumerate(found, start=1):
            i = order[s]
            results[i] = hyp
            work_done += lengths[i]
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
