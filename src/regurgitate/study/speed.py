"""This machine's speed for the footprint, measured instead of assumed: a few seconds of training
steps of the study's own student model (the engine's Transformer, the config's architecture,
batch size and precision) on random tokens, on the threads one job gets.

The footprint counts a job's work in FLOPs (`footprint.training_flops_per_token`); dividing the
FLOPs these steps did by their time gives the FLOP/s a training job reaches here. Decoding is not
timed: its speed is taken as training's times the ratio the development CPU measured between the
two (`footprint.CPU_FLOPS`), since training is most of a CPU study's time (83% of the CPU preset,
BENCHMARKS.md).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

# Pieces in a measured sentence: about Multi30k's, as the footprint assumes
# (footprint.WORDS_PER_SENTENCE through footprint.pieces).
MEASURED_LENGTH = 24


@dataclass(frozen=True)
class Measured:
    train_flops: float  # FLOP/s of one training job on `threads` threads
    decode_flops: float
    threads: int
    bf16: bool
    steps: int
    seconds: float


def measure(
    architecture: dict, vocab_size: int, training: dict, threads: int, seconds: float = 8.0
) -> Measured:
    """Training steps of `architecture` at `training`'s max_tokens and precision, on `threads`
    threads, for about `seconds` after one warm-up step."""
    import torch
    import torch.nn.functional as F

    from regurgitate.engine.device import autocast_context, use_bf16
    from regurgitate.engine.model import ModelConfig, Transformer
    from regurgitate.study.footprint import CPU_FLOPS, shape, training_flops_per_token

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        device = torch.device("cpu")
        bf16 = use_bf16(training.get("precision", "auto"), device)
        model = Transformer(ModelConfig(vocab_size=vocab_size, **architecture))
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        rows = max(1, training["max_tokens"] // MEASURED_LENGTH)
        generator = torch.Generator().manual_seed(0)
        src, tgt = torch.randint(4, vocab_size, (2, rows, MEASURED_LENGTH + 1), generator=generator)
        src = src[:, :-1]

        def step() -> None:
            with autocast_context(device, bf16):
                logits = model(src, tgt[:, :-1])
            loss = F.cross_entropy(logits.float().flatten(0, -2), tgt[:, 1:].flatten())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        step()  # warm-up: first-call allocations and kernel choices
        steps, start = 0, time.perf_counter()
        while steps < 2 or time.perf_counter() - start < seconds:
            step()
            steps += 1
        elapsed = time.perf_counter() - start
    finally:
        torch.set_num_threads(previous)
    tokens = steps * rows * MEASURED_LENGTH
    train = tokens * training_flops_per_token(shape(architecture, vocab_size)) / elapsed
    return Measured(
        train_flops=train,
        decode_flops=train * CPU_FLOPS["decode"] / CPU_FLOPS["train"],
        threads=threads,
        bf16=bf16,
        steps=steps,
        seconds=elapsed,
    )
