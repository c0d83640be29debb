"""A pre-norm Transformer encoder-decoder with tied embeddings and an incremental decoder.

One shared (joint source/target) vocabulary: the encoder embedding, the decoder embedding and the
output projection are the same matrix. Attention goes through PyTorch's fused
scaled_dot_product_attention; the decoder keeps a key/value cache for step-by-step decoding.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel

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
        with attention_kernels(q):
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=p, is_causal=causal
            )
        b, h, t, dh = y.shape
        return self.out(y.transpose(1, 2).reshape(b, t, h * dh))

    def forward_self(self, x: Tensor, mask: Tensor | None, causal: bool) -> Tensor:
        q, k, v = (self.split_heads(t) for t in self.qkv(x).chunk(3, dim=-1))
        return self.attend(q, k, v, mask, causal)

    def attend_one(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
        """Attention of a single query position per row. The fused kernel is built for long
        queries: for one query, two batched products are about twice as fast on CPU."""
        scores = torch.einsum("bhqd,bhkd->bhqk", q, k) * q.shape[-1] ** -0.5
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        y = torch.einsum("bhqk,bhkd->bhqd", scores.softmax(dim=-1), v)
        b, h, t, dh = y.shape
        return self.out(y.transpose(1, 2).reshape(b, t, h * dh))

    def forward_self_cached(self, x: Tensor, cache: KVCache, layer: int) -> Tensor:
        """One new position per row; keys and values of earlier positions come from `cache`."""
        q, k, v = (self.split_heads(t) for t in self.qkv(x).chunk(3, dim=-1))
        k, v = cache.write(layer, k, v)
        return self.attend_one(q, k, v, None)

    def forward_cross(self, x: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
        q = self.split_heads(self.q(x))
        if q.shape[2] == 1 and not self.training:
            return self.attend_one(q, k, v, mask)
        return self.attend(q, k, v, mask, causal=False)


class FeedForward(nn.Sequential):
    def __init__(self, d_model: int, ffn_dim: int, dropout: float):
        super().__init__(
            nn.Linear(d_model, ffn_dim),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(ffn_dim, d_model),
        )


class EncoderLayer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.d_model)
        self.attn = Attention(cfg.d_model, cfg.heads, cfg.dropout, cross=False)
        self.norm2 = nn.LayerNorm(cfg.d_model)
        self.ffn = FeedForward(cfg.d_model, cfg.ffn_dim, cfg.dropout)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = x + self.drop(self.attn.forward_self(self.norm1(x), mask, causal=False))
        return x + self.drop(self.ffn(self.norm2(x)))


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
        cache: KVCache | None,
        layer: int,
    ) -> Tensor:
        h = self.norm1(x)
        if cache is None:
            h = self.self_attn.forward_self(h, None, causal=True)
        else:
            h = self.self_attn.forward_self_cached(h, cache, layer)
        x = x + self.drop(h)
        x = x + self.drop(self.cross_attn.forward_cross(self.norm2(x), *memory_kv, memory_mask))
        return x + self.drop(self.ffn(self.norm3(x)))


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
        return self.drop(x)

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
        self,
        tgt_in: Tensor,
        memory_kv: list[tuple[Tensor, Tensor]],
        memory_mask: Tensor,
        cache: KVCache | None = None,
    ) -> Tensor:
        """The decoder's output before the vocabulary projection. With a `cache`, `tgt_in` is
        the one position after those the cache holds."""
        x = self.embed_tokens(tgt_in, 0 if cache is None else cache.length)
        for i, (layer, kv) in enumerate(zip(self.decoder, memory_kv, strict=True)):
            x = layer(x, kv, memory_mask, cache, i)
        if cache is not None:
            cache.length += 1
        return self.decoder_norm(x)

    def decode(
        self,
        tgt_in: Tensor,
        memory_kv: list[tuple[Tensor, Tensor]],
        memory_mask: Tensor,
        cache: KVCache | None = None,
    ) -> Tensor:
        states = self.decode_states(tgt_in, memory_kv, memory_mask, cache)
        return F.linear(states, self.embed.weight)

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
