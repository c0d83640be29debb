"""The reference of the training-speed issue (issue 27): the student trainer's model and training
step as they were before it, frozen, so that `train_speed.py --sides project,baseline` measures
the trainer of the day against them in the same run, however the engine changes later.

Copied from git b1a659c (`src/regurgitate/engine/model.py`: the model's training path;
`src/regurgitate/engine/train.py`: `_setup`'s optimizer and `_train_step`; `engine/device.py`:
`autocast_context`), decoding parts left out. Do not optimise this file: it is the baseline.
The batches (`regurgitate.engine.batching`) are the project's, so both sides train on the same
data; the loop times its steps as `train` does (one window from before the first batch is made to
the last step's `loss.item()`).
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def sinusoidal_positions(n: int, d: int) -> Tensor:
    position = torch.arange(n, dtype=torch.float32).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    table = torch.zeros(n, d)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)
    return table


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
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, is_causal=causal)
        b, h, t, dh = y.shape
        return self.out(y.transpose(1, 2).reshape(b, t, h * dh))

    def forward_self(self, x: Tensor, mask: Tensor | None, causal: bool) -> Tensor:
        q, k, v = (self.split_heads(t) for t in self.qkv(x).chunk(3, dim=-1))
        return self.attend(q, k, v, mask, causal)

    def forward_cross(self, x: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
        q = self.split_heads(self.q(x))
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
    def __init__(self, cfg):
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
    def __init__(self, cfg):
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.d_model)
        self.self_attn = Attention(cfg.d_model, cfg.heads, cfg.dropout, cross=False)
        self.norm2 = nn.LayerNorm(cfg.d_model)
        self.cross_attn = Attention(cfg.d_model, cfg.heads, cfg.dropout, cross=True)
        self.norm3 = nn.LayerNorm(cfg.d_model)
        self.ffn = FeedForward(cfg.d_model, cfg.ffn_dim, cfg.dropout)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, memory_kv: tuple[Tensor, Tensor], memory_mask: Tensor) -> Tensor:
        h = self.self_attn.forward_self(self.norm1(x), None, causal=True)
        x = x + self.drop(h)
        x = x + self.drop(self.cross_attn.forward_cross(self.norm2(x), *memory_kv, memory_mask))
        return x + self.drop(self.ffn(self.norm3(x)))


class Transformer(nn.Module):
    """The model of `regurgitate.engine.model.Transformer` before issue 27; the same parameter
    names, so a state_dict moves between the two."""

    def __init__(self, cfg):
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
        x = self.embed(tokens) * self.embed_scale + self.positions[offset : offset + t]
        return self.drop(x)

    def encode(self, src: Tensor) -> tuple[Tensor, Tensor]:
        mask = (src != self.cfg.pad_id)[:, None, None, :]
        x = self.embed_tokens(src)
        for layer in self.encoder:
            x = layer(x, mask)
        return self.encoder_norm(x), mask

    def forward(self, src: Tensor, tgt_in: Tensor, keep: Tensor | None = None) -> Tensor:
        memory, mask = self.encode(src)
        x = self.embed_tokens(tgt_in)
        for layer in self.decoder:
            x = layer(x, layer.cross_attn.project_kv(memory), mask)
        states = self.decoder_norm(x)
        if keep is not None:
            states = states.flatten(0, 1).index_select(0, keep)
        return F.linear(states, self.embed.weight)


def autocast_context(device: torch.device, bf16: bool):
    if bf16:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return torch.autocast(device_type=device.type, enabled=False)


def make_optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    return torch.optim.AdamW(
        model.parameters(), lr=lr, betas=(0.9, 0.98), eps=1e-9, weight_decay=weight_decay
    )


def train_step(model, optimizer, batch, lr: float, bf16: bool, device, label_smoothing, clip):
    """`engine.train._train_step` before issue 27, with the profiler labels of today's step
    (they compute nothing) so that `train_speed.py --profile` splits both steps alike."""
    from torch.profiler import record_function

    from regurgitate.engine.train import BACKWARD, FORWARD, OPTIMIZER

    for group in optimizer.param_groups:
        group["lr"] = lr
    with record_function(FORWARD):
        with autocast_context(device, bf16):
            logits = model(batch.src, batch.tgt_in, keep=batch.real)
        loss = F.cross_entropy(logits.float(), batch.targets, label_smoothing=label_smoothing)
    optimizer.zero_grad(set_to_none=True)
    with record_function(BACKWARD):
        loss.backward()
    with record_function(OPTIMIZER):
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
    return loss


def train_steps(
    model_cfg, cfg, data, tokenizer, batches, *, bf16: bool, device="cpu", on_step=None
) -> dict:
    """Train a fresh baseline model (seeded as `train` seeds its model) on `batches` with the
    settings of `cfg` (an `engine.train.TrainConfig`); its throughput as `train` reports it.
    The batches are made under the profiler label `train` gives them (engine.train.DATA)."""
    from torch.profiler import record_function

    from regurgitate.engine.batching import collate
    from regurgitate.engine.train import DATA, learning_rate

    device = torch.device(device)
    torch.manual_seed(cfg.seed)
    model = Transformer(model_cfg).to(device).train()
    optimizer = make_optimizer(model, cfg.lr, cfg.weight_decay)
    tokens = 0
    start = time.perf_counter()
    for step, indices in enumerate(batches, 1):
        with record_function(DATA):
            batch = collate(data, indices, tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id)
            batch = batch.to(device)
        loss = train_step(
            model, optimizer, batch, learning_rate(step, cfg), bf16, device,
            cfg.label_smoothing, cfg.clip_norm,
        )  # fmt: skip
        tokens += batch.target_tokens
        if on_step is not None:
            on_step(step)
    loss_value = loss.item()
    seconds = time.perf_counter() - start
    return {
        "model": model,
        "loss": loss_value,
        "target_tokens": tokens,
        "seconds": seconds,
        "target_tokens_per_second": tokens / seconds,
    }
