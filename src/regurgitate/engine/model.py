"""A pre-norm Transformer encoder-decoder with tied embeddings.

One shared (joint source/target) vocabulary: the encoder embedding, the decoder embedding and the
output projection are the same matrix. Attention goes through PyTorch's fused
scaled_dot_product_attention. Beam search (engine/decode.py) steps through the decoder's layers
one position at a time, with their keys and values in a KVCache.

Training on a CPU takes a path of its own where it pays (BENCHMARKS.md, issue 27): dropout masks
from 64-bit random words instead of one Bernoulli draw per element, attention with dropout as two
batched products around a softmax (scaled_dot_product_attention runs its unfused math kernel
whenever dropout is on), and the vocabulary projection fused with the label-smoothed
cross-entropy (`Transformer.loss`). Evaluation and decoding compute what they always did.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.profiler import record_function

from regurgitate.io import atomic_path


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    d_model: int = 256
    heads: int = 4
    encoder_layers: int = 3
    decoder_layers: int = 3
    ffn_dim: int = 1024
    dropout: float = 0.1
    max_positions: int = 256
    pad_id: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def sinusoidal_positions(n: int, d: int) -> Tensor:
    position = torch.arange(n, dtype=torch.float32).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    table = torch.zeros(n, d)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)
    return table


class KVCache:
    """The decoder's self-attention keys and values of the target positions decoded so far.

    Allocated once for the longest target and written in place, one position per step: a cache
    grown by concatenation is copied whole at every step. Time-major, (max_len, layers, 2, rows,
    heads, head_dim), so that the positions so far are one contiguous block: reordering or
    dropping rows (beam search) is a single index_select for all layers, into a spare buffer,
    and attention reads each layer's keys and values as strided views, without a copy. For
    inference only (the copies are not differentiated)."""

    def __init__(self, layers: int, max_len: int):
        self.layers, self.max_len = layers, max_len
        self.length = 0  # positions written
        self.buffer: Tensor | None = None  # allocated by the first write, in its dtype
        self.spare: Tensor | None = None  # flat storage the next select writes into

    def write(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Store one position's keys and values of `layer`, (rows, heads, 1, head_dim) each, and
        return the layer's keys and values of all positions so far, (rows, heads, t, head_dim)."""
        rows, heads, t, head_dim = k.shape
        if t != 1:
            raise ValueError(f"the key/value cache takes one position per step, got {t}")
        if self.length >= self.max_len:
            raise ValueError(f"the key/value cache holds {self.max_len} positions, all written")
        if self.buffer is None:
            shape = (self.max_len, self.layers, 2, rows, heads, head_dim)
            self.buffer = k.new_empty(shape)
            self.spare = k.new_empty(self.buffer.numel())
        self.buffer[self.length, layer, 0] = k[:, :, 0]
        self.buffer[self.length, layer, 1] = v[:, :, 0]
        past = self.buffer[: self.length + 1, layer].permute(1, 2, 3, 0, 4)
        return past[0], past[1]

    def select(self, rows: Tensor) -> None:
        """Keep the rows `rows` in that order: row i continues row rows[i]."""
        if self.buffer is None:
            return
        shape = list(self.buffer.shape)
        shape[3] = len(rows)
        if self.spare.numel() < math.prod(shape):
            self.spare = self.buffer.new_empty(math.prod(shape))
        target = self.spare[: math.prod(shape)].view(shape)
        torch.index_select(self.buffer[: self.length], 3, rows, out=target[: self.length])
        self.spare, self.buffer = self.buffer.view(-1), target


# The profiler label of making a dropout mask (benchmarks/train_speed.py --profile).
DROPOUT_MASK = "dropout.mask"
# Dropout keeps an element where a 16-bit lane of random words is at least this many steps
# above its minimum, out of 65536: the rate is p to within 1/65536.
LANES = 65536


def keep_scale(like: Tensor, p: float) -> Tensor:
    """A dropout multiplier shaped and typed like `like`: 0 with probability p, else 1/(1-p).

    On a CPU torch draws a dropout mask one Bernoulli sample per element (MT19937), which took
    10% of a training step of the preset student; here each 64-bit word of the same generator
    gives four elements a 16-bit lane each, compared with p. Elsewhere (CUDA) F.dropout's fused
    kernel is used instead (`dropout`, `dropout_add`). The draws come from torch's default
    generator, which checkpoints save, so a resumed run draws the same masks."""
    n = like.numel()
    with record_function(DROPOUT_MASK):
        words = torch.empty((n + 3) // 4, dtype=torch.int64, device=like.device)
        # From the int64 minimum with no upper bound: all 64 bits random (plain random_()
        # leaves the top bit 0).
        lanes = words.random_(-(2**63), None).view(torch.int16)[:n].view(like.shape)
        dropped = round(p * LANES)
        # Compared straight into a tensor of like's dtype: a boolean mask and its conversion
        # cost four times as much.
        scale = torch.empty(like.shape, dtype=like.dtype, device=like.device)
        torch.ge(lanes, dropped - LANES // 2, out=scale)
        return scale.mul_(LANES / (LANES - dropped))


def fast_dropout(x: Tensor) -> bool:
    """Whether training dropout on `x` takes the mask of `keep_scale` (on a CPU)."""
    return x.device.type == "cpu"


def dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """F.dropout(x, p, training), with the cheaper mask of `keep_scale` on a CPU."""
    if not training or p == 0.0:
        return x
    if not fast_dropout(x):
        return F.dropout(x, p, True)
    return x * keep_scale(x, p)


def dropout_add(x: Tensor, h: Tensor, p: float, training: bool) -> Tensor:
    """x + dropout(h): a residual connection, in one pass on a CPU (addcmul)."""
    if not training or p == 0.0:
        return x + h
    if not fast_dropout(h):
        return x + F.dropout(h, p, True)
    return torch.addcmul(x, h, keep_scale(h, p))


def attention_with_dropout(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, causal: bool, p: float
) -> Tensor:
    """Attention whose probabilities are dropped out with `keep_scale`'s mask: two batched
    products around a softmax. scaled_dot_product_attention with dropout runs its unfused math
    kernel on a CPU (scaled copies of q and k, a float mask made from the boolean one,
    a softmax that checks for fully masked rows, a Bernoulli mask); this is the same product
    with less around it. Every row has a key to attend to (a source has at least EOS; a causal
    row itself), so the softmax needs no check for fully masked rows."""
    lq, lk = q.shape[-2], k.shape[-2]
    bias = None
    if mask is not None:
        bias = torch.zeros(mask.shape, dtype=q.dtype, device=q.device)
        bias.masked_fill_(~mask, float("-inf"))
    if causal:
        future = torch.ones(lq, lk, dtype=torch.bool, device=q.device).triu_(1)
        causal_bias = torch.zeros(lq, lk, dtype=q.dtype, device=q.device)
        causal_bias.masked_fill_(future, float("-inf"))
        bias = causal_bias if bias is None else bias + causal_bias
    scores = torch.matmul(q, k.transpose(-1, -2))
    scale = q.shape[-1] ** -0.5
    scores = scores * scale if bias is None else torch.add(bias, scores, alpha=scale)
    probs = scores.softmax(dim=-1)
    return torch.matmul(probs * keep_scale(probs, p), v)


# Rows of the fused vocabulary projection and loss computed at a time: their logits stay in the
# cache between the products and the softmax (BENCHMARKS.md).
LOSS_ROWS = 256


class _ProjectedCrossEntropy(torch.autograd.Function):
    """Mean label-smoothed cross-entropy of `states @ weight.T`, gradients computed on the way.

    Row block by row block (LOSS_ROWS): the logits, their log-softmax, the loss, and the
    softmax less the gold tokens' share (1 - e), which goes at once into the two products of
    the backward pass (the states' and the weight's gradients). The fp32 logits of all rows
    (rows x vocabulary, the largest tensor of a step) are never held; in fp32 the weight's
    gradient is summed block by block, in bf16 the blocks' softmax (bf16) is kept for one
    product at the end, rounded once as F.linear's backward would. The smoothing term needs no pass
    over the logits: the sum of a row's logits is the row's state times the sum of the weight's
    rows, and its gradient, a constant e / V for every logit, is subtracted from the products
    once, as that sum (states) and the states' sum (weight). The backward pass only scales."""

    @staticmethod
    def forward(ctx, states, weight, targets, smoothing: float, dtype: torch.dtype):
        n, vocab = states.shape[0], weight.shape[0]
        s, w = states.to(dtype), weight.to(dtype)
        s32, w32 = states.float(), weight.float()
        grad_s = torch.empty_like(s)
        fp32 = dtype == torch.float32
        if fp32:  # the weight's gradient summed block by block, exactly enough
            grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device)
        else:  # one product at the end, rounded once, as F.linear's backward would
            probs = torch.empty(n, vocab, dtype=dtype, device=states.device)
        total = torch.zeros((), dtype=torch.float32, device=states.device)
        if smoothing:
            weight_sum = w32.sum(0)
            logit_sums = s32 @ weight_sum  # every row's sum of logits
        for start in range(0, n, LOSS_ROWS):
            rows = s[start : start + LOSS_ROWS]
            gold = targets[start : start + LOSS_ROWS, None]
            logits = torch.mm(rows, w.t()).float()
            logp = logits.log_softmax(dim=1)
            gold_logp = logp.gather(1, gold)
            total -= (1.0 - smoothing) * gold_logp.sum()
            if smoothing:
                # The mean over the vocabulary of -log p: log-sum-exp less the mean logit.
                lse = (logits.gather(1, gold) - gold_logp).squeeze(1)
                sums = logit_sums[start : start + LOSS_ROWS]
                total -= smoothing / vocab * (sums - vocab * lse).sum()
            grad = logp.exp_()  # the softmax, in place
            grad.scatter_add_(1, gold, grad.new_full(gold.shape, smoothing - 1.0))
            if not fp32:
                grad = probs[start : start + LOSS_ROWS].copy_(grad)
            torch.mm(grad, w, out=grad_s[start : start + LOSS_ROWS])
            if fp32:
                grad_w.addmm_(grad.t(), rows)
        if not fp32:
            grad_w = torch.mm(probs.t(), s).float()
        grad_s = grad_s.float()
        if smoothing:
            grad_s.sub_(weight_sum, alpha=smoothing / vocab)
            grad_w.sub_(s32.sum(0), alpha=smoothing / vocab)
        ctx.save_for_backward(grad_s, grad_w)
        ctx.dtypes = states.dtype, weight.dtype
        return total / n

    @staticmethod
    def backward(ctx, grad_loss):
        grad_s, grad_w = ctx.saved_tensors
        n = grad_s.shape[0]
        scale = grad_loss / n
        return (
            (grad_s * scale).to(ctx.dtypes[0]),
            (grad_w * scale).to(ctx.dtypes[1]),
            None,
            None,
            None,
        )


def projected_cross_entropy(
    states: Tensor, weight: Tensor, targets: Tensor, label_smoothing: float
) -> Tensor:
    """F.cross_entropy(F.linear(states, weight).float(), targets, label_smoothing=...), the
    product in the autocast dtype where autocast is on. On a CPU the projection and the loss are
    one step (`_ProjectedCrossEntropy`); elsewhere the two torch operations."""
    if states.device.type != "cpu" or not torch.is_grad_enabled():
        logits = F.linear(states, weight).float()
        return F.cross_entropy(logits, targets, label_smoothing=label_smoothing)
    device = states.device.type
    dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else states.dtype
    with torch.autocast(device, enabled=False):
        return _ProjectedCrossEntropy.apply(states, weight, targets, label_smoothing, dtype)


def attention_kernels(q: Tensor):
    """The kernels scaled_dot_product_attention may choose: all of them, except on CUDA under
    torch.use_deterministic_algorithms, where only the math kernel, whose backward is
    deterministic (the fused flash and memory-efficient backward kernels add up partial
    gradients in whatever order their blocks finish)."""
    if q.is_cuda and torch.are_deterministic_algorithms_enabled():
        return sdpa_kernel(SDPBackend.MATH)
    return contextlib.nullcontext()


class Attention(nn.Module):
    """Multi-head attention; self-attention fuses q, k and v into one projection."""

    def __init__(self, d_model: int, heads: int, dropout: float, cross: bool):
        super().__init__()
        assert d_model % heads == 0, "d_model must be divisible by heads"
        self.heads = heads
        self.cross = cross
        self.dropout = dropout
        if cross:
            self.q = nn.Linear(d_model, d_model)
            self.kv = nn.Linear(d_model, 2 * d_model)
        else:
            self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def split_heads(self, x: Tensor) -> Tensor:
        b, t, d = x.shape
        return x.view(b, t, self.heads, d // self.heads).transpose(1, 2)

    def project_kv(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        k, v = self.kv(memory).chunk(2, dim=-1)
        return self.split_heads(k), self.split_heads(v)

    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, causal: bool) -> Tensor:
        p = self.dropout if self.training else 0.0
        if p > 0.0 and fast_dropout(q):
            y = attention_with_dropout(q, k, v, mask, causal, p)
        else:
            with attention_kernels(q):
                y = F.scaled_dot_product_attention(
                    q, k, v, attn_mask=mask, dropout_p=p, is_causal=causal
                )
        b, h, t, dh = y.shape
        return self.out(y.transpose(1, 2).reshape(b, t, h * dh))

    def forward_self(self, x: Tensor, mask: Tensor | None, causal: bool) -> Tensor:
        q, k, v = (self.split_heads(t) for t in self.qkv(x).chunk(3, dim=-1))
        return self.attend(q, k, v, mask, causal)

    def forward_cross(self, x: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
        return self.attend(self.split_heads(self.q(x)), k, v, mask, causal=False)


class FeedForward(nn.Sequential):
    """Linear, ReLU, dropout, Linear (a Sequential: the parameter names of saved models)."""

    def __init__(self, d_model: int, ffn_dim: int, dropout: float):
        super().__init__(
            nn.Linear(d_model, ffn_dim),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(ffn_dim, d_model),
        )

    def forward(self, x: Tensor) -> Tensor:
        expand, _, drop, contract = self
        if not self.training:
            return contract(F.relu(expand(x)))
        return contract(dropout(F.relu(expand(x)), drop.p, True))


class EncoderLayer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.d_model)
        self.attn = Attention(cfg.d_model, cfg.heads, cfg.dropout, cross=False)
        self.norm2 = nn.LayerNorm(cfg.d_model)
        self.ffn = FeedForward(cfg.d_model, cfg.ffn_dim, cfg.dropout)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        p, training = self.drop.p, self.training
        x = dropout_add(x, self.attn.forward_self(self.norm1(x), mask, causal=False), p, training)
        return dropout_add(x, self.ffn(self.norm2(x)), p, training)


class DecoderLayer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.d_model)
        self.self_attn = Attention(cfg.d_model, cfg.heads, cfg.dropout, cross=False)
        self.norm2 = nn.LayerNorm(cfg.d_model)
        self.cross_attn = Attention(cfg.d_model, cfg.heads, cfg.dropout, cross=True)
        self.norm3 = nn.LayerNorm(cfg.d_model)
        self.ffn = FeedForward(cfg.d_model, cfg.ffn_dim, cfg.dropout)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(
        self,
        x: Tensor,
        memory_kv: tuple[Tensor, Tensor],
        memory_mask: Tensor,
    ) -> Tensor:
        p, training = self.drop.p, self.training
        h = self.self_attn.forward_self(self.norm1(x), None, causal=True)
        x = dropout_add(x, h, p, training)
        h = self.cross_attn.forward_cross(self.norm2(x), *memory_kv, memory_mask)
        x = dropout_add(x, h, p, training)
        return dropout_add(x, self.ffn(self.norm3(x)), p, training)


class Transformer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model, padding_idx=cfg.pad_id)
        nn.init.normal_(self.embed.weight, mean=0.0, std=cfg.d_model**-0.5)
        with torch.no_grad():
            self.embed.weight[cfg.pad_id].zero_()
        self.register_buffer(
            "positions", sinusoidal_positions(cfg.max_positions, cfg.d_model), persistent=False
        )
        self.embed_scale = math.sqrt(cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.encoder = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.encoder_layers))
        self.decoder = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.decoder_layers))
        self.encoder_norm = nn.LayerNorm(cfg.d_model)
        self.decoder_norm = nn.LayerNorm(cfg.d_model)

    def embed_tokens(self, tokens: Tensor, offset: int = 0) -> Tensor:
        t = tokens.shape[1]
        if offset + t > self.positions.shape[0]:
            raise ValueError(
                f"sequence of {offset + t} tokens exceeds max_positions={self.positions.shape[0]}"
            )
        x = self.embed(tokens) * self.embed_scale + self.positions[offset : offset + t]
        return dropout(x, self.drop.p, self.training)

    def padding_mask(self, src: Tensor) -> Tensor:
        """Boolean mask (batch, 1, 1, src_len): True where attention may look."""
        return (src != self.cfg.pad_id)[:, None, None, :]

    def encode(self, src: Tensor) -> tuple[Tensor, Tensor]:
        mask = self.padding_mask(src)
        x = self.embed_tokens(src)
        for layer in self.encoder:
            x = layer(x, mask)
        return self.encoder_norm(x), mask

    def memory_kv(self, memory: Tensor) -> list[tuple[Tensor, Tensor]]:
        """Cross-attention keys and values of every decoder layer, computed once per source."""
        return [layer.cross_attn.project_kv(memory) for layer in self.decoder]

    def decode_states(
        self, tgt_in: Tensor, memory_kv: list[tuple[Tensor, Tensor]], memory_mask: Tensor
    ) -> Tensor:
        """The decoder's output before the vocabulary projection, every target position at once
        (training and scoring; beam search steps through the same layers in engine/decode.py)."""
        x = self.embed_tokens(tgt_in)
        for layer, kv in zip(self.decoder, memory_kv, strict=True):
            x = layer(x, kv, memory_mask)
        return self.decoder_norm(x)

    def forward(self, src: Tensor, tgt_in: Tensor, keep: Tensor | None = None) -> Tensor:
        """Teacher-forced logits (batch, tgt_len, vocab); with `keep`, flat indices into
        (batch x tgt_len), only the logits of those positions (kept, vocab). Training keeps the
        real target positions: the vocabulary projection is its largest product, and padding
        would only be projected to be ignored. Indices, not a boolean mask: selecting by a mask
        makes the host wait for the device to count it."""
        memory, mask = self.encode(src)
        states = self.decode_states(tgt_in, self.memory_kv(memory), mask)
        if keep is not None:
            states = states.flatten(0, 1).index_select(0, keep)
        return F.linear(states, self.embed.weight)

    def loss(
        self, src: Tensor, tgt_in: Tensor, keep: Tensor, targets: Tensor, label_smoothing: float
    ) -> Tensor:
        """The training loss: the mean label-smoothed cross-entropy of the real target positions
        `keep` (flat indices into batch x tgt_len, as in `forward`), whose tokens are `targets`.
        The same as F.cross_entropy(self(src, tgt_in, keep).float(), targets, label_smoothing=
        label_smoothing), with the vocabulary projection and the loss fused on a CPU
        (`projected_cross_entropy`)."""
        memory, mask = self.encode(src)
        states = self.decode_states(tgt_in, self.memory_kv(memory), mask)
        states = states.flatten(0, 1).index_select(0, keep)
        return projected_cross_entropy(states, self.embed.weight, targets, label_smoothing)

    def kv_cache(self, max_len: int) -> KVCache:
        """An empty key/value cache for decoding up to `max_len` positions."""
        return KVCache(len(self.decoder), max_len)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def save_torch(payload: dict, path) -> None:
    """torch.save `payload` to `path`, whole or not at all, the same bytes for the same payload.

    torch.save names the folder inside its zip archive after the file it is given, which here
    would be a random temporary name; through an open file it is always `archive`."""
    with atomic_path(path) as tmp, tmp.open("wb") as handle:
        torch.save(payload, handle)


def save_model(model: Transformer, path, extra: dict | None = None) -> None:
    """Save weights and architecture together, so a model file is all a decoder needs."""
    payload = {"config": model.cfg.to_dict(), "state_dict": model.state_dict(), **(extra or {})}
    save_torch(payload, path)


def load_model(path, device: str | torch.device = "cpu") -> tuple[Transformer, dict]:
    payload = torch.load(path, map_location=device, weights_only=True)
    model = Transformer(ModelConfig(**payload["config"])).to(device)
    model.load_state_dict(payload["state_dict"])
    model.eval()
    return model, payload
