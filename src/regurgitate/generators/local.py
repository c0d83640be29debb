"""Local generators: transformer teachers trained inside the workflow on the teacher pool."""

from __future__ import annotations

from pathlib import Path

import torch

from regurgitate.engine.decode import DecodeConfig, translate
from regurgitate.engine.model import load_model
from regurgitate.engine.tokenizer import Tokenizer
from regurgitate.generators.base import Generation


class LocalGenerator:
    def __init__(
        self,
        name: str,
        model_path: str | Path,
        tokenizer_path: str | Path,
        decoding: DecodeConfig,
        device: str | torch.device = "cpu",
        bf16: bool = False,
    ):
        self.name = name
        self.model, payload = load_model(model_path, device)
        self.training_summary: dict = payload.get("summary", {})
        self.tokenizer = Tokenizer(tokenizer_path)
        self.decoding = decoding
        self.bf16 = bf16

    def translate(self, sources: list[str]) -> list[Generation]:
        results = translate(
            self.model, self.tokenizer, sources, self.decoding, bf16=self.bf16, progress=self.name
        )
        # The decoder reads at most max_positions - 2 source tokens (one place each for the
        # source's EOS and the target's BOS); a longer source is translated in part.
        fits = self.model.cfg.max_positions - 2
        lengths = [len(ids) for ids in self.tokenizer.encode(sources)]
        return [
            Generation(
                target=text,
                logprob=hyp.logprob,
                tokens=len(hyp.tokens),
                cost=0.0,
                finish_reason="stop" if hyp.finished else "length",
                flags=["empty"] * (not text)
                + ["cut_off"] * (not hyp.finished)
                + ["source_cut"] * (length > fits),
            )
            for (text, hyp), length in zip(results, lengths, strict=True)
        ]
