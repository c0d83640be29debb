"""The training loop: token batches, label smoothing, warm-up then inverse-square-root decay,
early stopping on dev BLEU or chrF, and checkpoints that a killed run resumes from exactly.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from regurgitate.analysis.metrics import score
from regurgitate.engine.batching import EncodedPairs, collate, epoch_batches
from regurgitate.engine.decode import DecodeConfig, translate
from regurgitate.engine.device import autocast_context, use_bf16
from regurgitate.engine.model import ModelConfig, Transformer
from regurgitate.io import atomic_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    max_tokens: int = 4096  # target-side budget of one batch, padding included
    lr: float = 7e-4  # peak learning rate, reached at the end of warm-up
    warmup_steps: int = 500
    weight_decay: float = 0.0
    label_smoothing: float = 0.1
    clip_norm: float = 1.0
    max_steps: int = 20000
    max_epochs: int = 100
    eval_every: int = 500  # steps between dev evaluations (and checkpoints)
    patience: int = 5  # evaluations without improvement before stopping
    eval_metric: str = "bleu"  # "bleu" or "chrf": never loss, see DESIGN.md
    eval_sentences: int = 500  # dev sentences decoded per evaluation
    log_every: int = 100
    seed: int = 1
    # "fp32", "bf16", or "auto": bf16 on CUDA devices that support it and on CPUs with AVX-512
    # BF16 or AMX, fp32 elsewhere
    precision: str = "auto"

    def __post_init__(self):
        if self.eval_metric not in ("bleu", "chrf"):
            raise ValueError(f"eval_metric must be 'bleu' or 'chrf', got {self.eval_metric!r}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision must be auto, fp32 or bf16, got {self.precision!r}")


def learning_rate(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up to cfg.lr, then decay with the inverse square root of the step."""
    step = max(step, 1)
    return cfg.lr * min(step / cfg.warmup_steps, math.sqrt(cfg.warmup_steps / step))


def fingerprint(*parts: object) -> str:
    """What a checkpoint must match to be resumed: configuration and data."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def data_fingerprint(data: EncodedPairs) -> str:
    h = hashlib.sha256()
    for s, t in zip(data.sources, data.targets, strict=True):
        h.update(repr((s, t)).encode())
    return h.hexdigest()[:16]


@dataclass
class DevSet:
    sources: list[str]
    references: list[str]


def evaluate(model, tokenizer, dev: DevSet, metric: str, bf16: bool) -> float:
    """Greedy-decode the dev sources and score them: the early-stopping signal."""
    hyps = translate(model, tokenizer, dev.sources, DecodeConfig(beam=1), bf16=bf16)
    model.train()
    return score([text for text, _ in hyps], dev.references)[metric]


def save_checkpoint(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def train(
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    data: EncodedPairs,
    dev: DevSet,
    tokenizer,
    checkpoint: Path,
    *,
    device: str | torch.device = "cpu",
    init_state: dict | None = None,
    on_step: Callable[[int], None] | None = None,
) -> tuple[Transformer, dict]:
    """Train and return the model at its best dev score, with a summary of the run.

    `checkpoint` is written at every evaluation; if it exists and matches this configuration and
    data, training resumes from it and ends exactly as an uninterrupted run would.
    `init_state` starts from given weights (fine-tuning). `on_step` is called after each step.
    """
    device = torch.device(device)
    dev = DevSet(dev.sources[: cfg.eval_sentences], dev.references[: cfg.eval_sentences])
    bf16 = use_bf16(cfg.precision, device)
    torch.manual_seed(cfg.seed)
    model = Transformer(model_cfg).to(device)
    if init_state is not None:
        model.load_state_dict(init_state)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, betas=(0.9, 0.98), eps=1e-9, weight_decay=cfg.weight_decay
    )
    key = fingerprint(model_cfg.to_dict(), asdict(cfg), data_fingerprint(data), init_state is None)
    state = {"step": 0, "epoch": 0, "batch": 0, "best": None, "best_step": 0, "bad_evals": 0}
    state.update(history=[], best_state=None, tokens=0, timed_tokens=0, elapsed=0.0)
    if checkpoint.exists():
        saved = torch.load(checkpoint, map_location=device, weights_only=False)
        if saved.get("fingerprint") == key:
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            torch.set_rng_state(saved["rng"])
            if device.type == "cuda" and saved.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(saved["cuda_rng"])
            state = saved["state"]
            log.info("resuming from %s at step %d", checkpoint, state["step"])
        else:
            log.info("ignoring %s: it was written for another configuration or data", checkpoint)

    log.info(
        "training %d parameters on %d pairs (%s, %s)",
        model.num_parameters(),
        len(data),
        device,
        "bf16" if bf16 else "fp32",
    )
    model.train()
    stop = state.get("stopped", False)
    # Throughput counts training only: evaluation and checkpoint time is taken out of the
    # window, and a window ends where loss.item() waits for the device (right on CUDA too).
    window_tokens, window_start = 0, time.perf_counter()
    while not stop and state["step"] < cfg.max_steps and state["epoch"] < cfg.max_epochs:
        batches = epoch_batches(data, cfg.max_tokens, cfg.seed, state["epoch"])
        for indices in batches[state["batch"] :]:
            batch = collate(data, indices, tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id)
            batch = batch.to(device)
            lr = learning_rate(state["step"] + 1, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            real = batch.tgt_out != tokenizer.pad_id
            with autocast_context(device, bf16):
                logits = model(batch.src, batch.tgt_in, keep=real)
            loss = F.cross_entropy(
                logits.float(), batch.tgt_out[real], label_smoothing=cfg.label_smoothing
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)
            optimizer.step()
            state["step"] += 1
            state["batch"] += 1
            state["tokens"] += batch.target_tokens
            window_tokens += batch.target_tokens
            if on_step is not None:
                on_step(state["step"])

            if state["step"] % cfg.log_every == 0:
                loss_value = loss.item()  # waits for the device before the clock is read
                seconds = time.perf_counter() - window_start
                state["elapsed"] += seconds
                state["timed_tokens"] += window_tokens
                log.info(
                    "step %d epoch %d loss %.3f lr %.2e %.0f target tokens/s",
                    state["step"],
                    state["epoch"],
                    loss_value,
                    lr,
                    window_tokens / seconds,
                )
                window_tokens, window_start = 0, time.perf_counter()

            last = state["step"] >= cfg.max_steps
            if state["step"] % cfg.eval_every == 0 or last:
                eval_start = time.perf_counter()
                stop = evaluate_and_checkpoint(model, optimizer, tokenizer, dev, cfg, bf16, state)
                stop = stop or last
                state["stopped"] = stop
                save_checkpoint(checkpoint, checkpoint_payload(model, optimizer, state, key))
                window_start += time.perf_counter() - eval_start
            if stop:
                break
        else:
            state["epoch"] += 1
            state["batch"] = 0
            if state["epoch"] >= cfg.max_epochs:
                if not state["history"] or state["history"][-1]["step"] != state["step"]:
                    evaluate_and_checkpoint(model, optimizer, tokenizer, dev, cfg, bf16, state)
                state["stopped"] = True
                save_checkpoint(checkpoint, checkpoint_payload(model, optimizer, state, key))

    if state["best_state"] is not None:
        model.load_state_dict(state["best_state"])
    model.eval()
    summary = {
        "steps": state["step"],
        "epochs_completed": state["epoch"],
        "best_step": state["best_step"],
        f"best_dev_{cfg.eval_metric}": state["best"],
        "dev_history": state["history"],
        "target_tokens": state["tokens"],
        "target_tokens_per_second": (
            state["timed_tokens"] / state["elapsed"] if state["elapsed"] else None
        ),
        "parameters": model.num_parameters(),
        "precision": "bf16" if bf16 else "fp32",
        "device": str(device),
    }
    return model, summary


def checkpoint_payload(model, optimizer, state: dict, key: str) -> dict:
    return {
        "fingerprint": key,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state() if torch.cuda.is_available() else None,
        "state": state,
    }


def evaluate_and_checkpoint(model, optimizer, tokenizer, dev, cfg, bf16, state) -> bool:
    """Score the dev set, keep the best weights; True when patience has run out."""
    value = evaluate(model, tokenizer, dev, cfg.eval_metric, bf16)
    state["history"].append({"step": state["step"], cfg.eval_metric: value})
    improved = state["best"] is None or value > state["best"]
    if improved:
        state["best"], state["best_step"], state["bad_evals"] = value, state["step"], 0
        state["best_state"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    else:
        state["bad_evals"] += 1
    log.info(
        "step %d dev %s %.2f (best %.2f at step %d)",
        state["step"],
        cfg.eval_metric,
        value,
        state["best"],
        state["best_step"],
    )
    return state["bad_evals"] >= cfg.patience
