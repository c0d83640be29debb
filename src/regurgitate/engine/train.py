"""The training loop: token batches, label smoothing, warm-up then inverse-square-root decay,
early stopping on dev BLEU or chrF, and checkpoints that a killed run resumes from exactly.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.profiler import record_function

from regurgitate.engine.batching import EncodedPairs, collate, epoch_batches
from regurgitate.engine.decode import DecodeConfig, translate
from regurgitate.engine.device import (
    autocast_context,
    configure,
    rng_state,
    set_rng_state,
    use_bf16,
)
from regurgitate.engine.metrics import score
from regurgitate.engine.model import ModelConfig, Transformer, save_torch
from regurgitate.engine.progress import Progress
from regurgitate.io import atomic_path, remove_empty_folders, remove_stale_temporaries

log = logging.getLogger(__name__)

# The key of the summary's measured timings, which `split_timing` takes out before it is saved.
TIMING = "timing"
# Training settings that do not change what training computes, so not part of a checkpoint's
# fingerprint: a run resumes whatever they were when its checkpoint was written.
NOT_FINGERPRINTED = ("checkpoint_minutes",)
# Training settings added after checkpoints existed, fingerprinted only where they differ from
# their default, so that a checkpoint written before them keeps resuming.
FINGERPRINTED_IF_SET = ("deterministic", "strict_fp32")
# The parts of a training step as a torch.profiler trace names them (record_function), which
# benchmarks/train_speed.py --profile splits a step into.
DATA, FORWARD, BACKWARD, OPTIMIZER = (
    "train.data",
    "train.forward",
    "train.backward",
    "train.optimizer",
)
# The clock of the checkpoint interval (monotonic: a change of the system time moves no
# checkpoint).
clock = time.monotonic


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
    # Minutes at least between two checkpoints: one is written at the first evaluation this long
    # after the last (or after the start); 0 writes one at every evaluation. A base model's
    # checkpoint is 0.8 GB; a resumed run redoes the steps since the last one, the same steps.
    checkpoint_minutes: float = 0.0
    patience: int = 5  # evaluations without improvement before stopping
    eval_metric: str = "bleu"  # "bleu" or "chrf": never loss, see docs/study.md
    eval_sentences: int = 500  # dev sentences decoded per evaluation
    log_every: int = 100
    seed: int = 1
    # "fp32", "bf16", or "auto": bf16 where the hardware computes it natively (CUDA compute
    # capability 8.0 or later; CPUs with AVX-512 BF16 or AMX), fp32 elsewhere
    precision: str = "auto"
    # fp32 matmuls in full fp32 on GPUs with TF32 tensor cores (Ampere and later), which take
    # TF32 otherwise (engine.device.configure)
    strict_fp32: bool = False
    # Deterministic kernels only (engine.device.configure): on a GPU, the same bytes in every
    # run, and a resumed run ends exactly as an uninterrupted one, at some cost in speed. On a
    # CPU, runs are the same bytes either way.
    deterministic: bool = False
    # Which weights training returns: "best" (the best dev score; patience stops early; with
    # init weights, those are evaluated first, so the starting model can win) or "last" (the
    # weights after the whole budget, max_steps or max_epochs, as a fine-tuning API returns
    # them; dev scores are still logged).
    select: str = "best"

    def __post_init__(self):
        if self.select not in ("best", "last"):
            raise ValueError(f"select must be 'best' or 'last', got {self.select!r}")
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
    """Write a checkpoint, keeping the one before it. A whole latest checkpoint exists at every
    moment: the old one takes its second name (a hard link) before the new one, written aside,
    replaces it, so a stop between any two instructions, a full disk or a damaged file leaves a
    checkpoint to resume from."""
    latest, previous = checkpoint_files(path)
    if latest.exists():
        with atomic_path(previous) as aside:
            aside.unlink()
            try:
                os.link(latest, aside)
            except OSError:  # a file system without hard links
                shutil.copyfile(latest, aside)
    save_torch(state, latest)


@dataclass(frozen=True)
class _Run:
    """What stays fixed through one call of `train`: the model and optimizer it updates, what it
    reads, and where its checkpoint goes. Progress lives in the `state` dict instead, because that
    is what a checkpoint saves."""

    cfg: TrainConfig
    data: EncodedPairs
    dev: DevSet
    tokenizer: Any
    model: Transformer
    optimizer: torch.optim.Optimizer
    device: torch.device
    bf16: bool
    checkpoint: Path
    key: str  # the fingerprint a checkpoint must carry to be resumed
    saves: _Saves
    total_steps: int  # the steps max_steps or max_epochs allows, whichever is fewer
    steps_per_epoch: int


@dataclass
class _Saves:
    """When the last checkpoint was written (or the run started), by `clock`."""

    last: float = field(default_factory=lambda: clock())

    def due(self, cfg: TrainConfig) -> bool:
        return clock() - self.last >= 60.0 * cfg.checkpoint_minutes


@dataclass
class _Throughput:
    """The current throughput window: target tokens trained since `start`. Evaluation and
    checkpoint time is taken out of the window (`paused`), so that throughput counts training
    only; a window ends where loss.item() waits for the device (right on CUDA too)."""

    tokens: int = 0
    start: float = field(default_factory=time.perf_counter)

    @contextmanager
    def paused(self):
        began = time.perf_counter()
        yield
        self.start += time.perf_counter() - began


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
    run = _setup(model_cfg, cfg, data, dev, tokenizer, checkpoint, torch.device(device), init_state)
    state = _resume(run)  # None unless a checkpoint of this configuration and data exists
    if state is None:
        state = _fresh_state()
    log.info(
        "training %d parameters on %d pairs, seed %d (%s, %s): %s",
        run.model.num_parameters(),
        len(data),
        cfg.seed,
        run.device,
        _precision(run.bf16),
        _budget(run),
    )
    if cfg.select == "best" and init_state is not None and not state["history"]:
        _evaluate_and_keep_best(run, state)  # step 0: the starting model may stay the best
    run.model.train()
    stop = state.get("stopped", False)
    window = _Throughput()
    progress = Progress(run.total_steps, done_at_start=state["step"])
    # An epoch ends the loop early (True) when patience runs out or at max_steps.
    while not stop and state["step"] < cfg.max_steps and state["epoch"] < cfg.max_epochs:
        stop = _train_epoch(run, state, window, on_step, progress)

    if cfg.select == "best" and state["best_state"] is not None:
        run.model.load_state_dict(state["best_state"])
    run.model.eval()
    summary = _summary(run, state)
    if summary[TIMING]["target_tokens_per_second"] is not None:
        log.info(
            "trained at %.0f target tokens/s (%.1f s of training, evaluation excluded)",
            summary[TIMING]["target_tokens_per_second"],
            summary[TIMING]["seconds"],
        )
    return run.model, summary


def _setup(model_cfg, cfg, data, dev, tokenizer, checkpoint, device, init_state) -> _Run:
    """Build the model and optimizer. The seed is set right before the model is built, so that
    its initial weights (and then dropout) draw the same random numbers in every run."""
    dev = DevSet(dev.sources[: cfg.eval_sentences], dev.references[: cfg.eval_sentences])
    configure(device, deterministic=cfg.deterministic, strict_fp32=cfg.strict_fp32)
    bf16 = use_bf16(cfg.precision, device)
    torch.manual_seed(cfg.seed)
    model = Transformer(model_cfg).to(device)
    if init_state is not None:
        model.load_state_dict(init_state)
    optimizer = make_optimizer(model, cfg)
    key = fingerprint(
        model_cfg.to_dict(), _fingerprinted(cfg), data_fingerprint(data), init_state is None
    )
    saves = _Saves()
    # Every epoch has as many batches: they differ only in how equal lengths are ordered.
    per_epoch = len(epoch_batches(data, cfg.max_tokens, cfg.seed, 0))
    total = min(cfg.max_steps, cfg.max_epochs * per_epoch)
    return _Run(
        cfg, data, dev, tokenizer, model, optimizer, device, bf16, checkpoint, key, saves,
        total, per_epoch,
    )  # fmt: skip


# AdamW's kernel: set when the optimizer is made, and again on one loaded from a checkpoint.
ADAMW_KERNEL = {"fused": True, "foreach": None}


def make_optimizer(model: Transformer, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with torch's fused kernel: on a CPU a quarter of the time of its per-parameter
    loop (BENCHMARKS.md, issue 27), which was 5% of a training step of the preset student."""
    return torch.optim.AdamW(
        model.parameters(),
        lr=cfg.lr,
        betas=(0.9, 0.98),
        eps=1e-9,
        weight_decay=cfg.weight_decay,
        **ADAMW_KERNEL,
    )


def _budget(run: _Run) -> str:
    """What bounds the run's steps, for its first log line: a user reads the time left of
    each later line against it."""
    cfg = run.cfg
    epochs = cfg.max_epochs * run.steps_per_epoch
    cap = (
        f"max_steps {cfg.max_steps}"
        if cfg.max_steps <= epochs
        else f"max_epochs {cfg.max_epochs} x {run.steps_per_epoch} batches"
    )
    sooner = (
        f", fewer if dev {cfg.eval_metric} stops improving for {cfg.patience} evaluations"
        if cfg.select == "best"
        else ""
    )
    return f"at most {run.total_steps} steps ({cap}){sooner}"


def _fingerprinted(cfg: TrainConfig) -> dict:
    defaults = TrainConfig()
    return {
        name: value
        for name, value in asdict(cfg).items()
        if name not in NOT_FINGERPRINTED
        and not (name in FINGERPRINTED_IF_SET and value == getattr(defaults, name))
    }


def _fresh_state() -> dict:
    """The progress of a run that starts from nothing. These keys are the checkpoint format: a
    checkpoint written by an older version must keep resuming. `stopped` is added at the first
    checkpoint."""
    return {
        "step": 0,  # optimizer steps taken
        "epoch": 0,  # epochs completed
        "batch": 0,  # batches of the current epoch trained on
        "best": None,  # best dev score so far
        "best_step": 0,
        "bad_evals": 0,  # evaluations since the best one
        "history": [],  # one {"step": ..., metric: ...} per evaluation
        "best_state": None,  # the weights at the best dev score
        "tokens": 0,  # target tokens trained on
        "timed_tokens": 0,  # the part of `tokens` inside timed throughput windows
        "elapsed": 0.0,  # seconds of those windows
    }


def _resume(run: _Run) -> dict | None:
    """Load model, optimizer and random state from a matching checkpoint; return its progress, or
    None when there is no checkpoint or it was written for another configuration or data. The
    latest checkpoint is tried first, then the one before it (when the latest cannot be read)."""
    remove_stale_temporaries(run.checkpoint)  # a write that a kill interrupted
    for path in checkpoint_files(run.checkpoint):
        saved = _load_checkpoint(path)
        if saved is None:
            continue
        if saved["fingerprint"] != run.key:
            log.info("ignoring %s: it was written for another configuration or data", path)
            return None
        run.model.load_state_dict(saved["model"])
        run.optimizer.load_state_dict(saved["optimizer"])
        # A checkpoint keeps the kernel choice of the code that wrote it; this code's goes on.
        for group in run.optimizer.param_groups:
            group.update(ADAMW_KERNEL)
        # The random state goes on where the killed run left it: the same dropout masks follow.
        torch.set_rng_state(saved["rng"])
        set_rng_state(saved.get("cuda_rng"), run.device)
        state = saved["state"]
        log.info("resuming from %s at step %d", path, state["step"])
        return state
    return None


CHECKPOINT_KEYS = ("fingerprint", "model", "optimizer", "rng", "state")


def checkpoint_files(path: Path) -> tuple[Path, Path]:
    """The latest checkpoint and the one before it, which is kept until the next is whole."""
    path = Path(path)
    return path, path.with_name(f"{path.stem}.previous{path.suffix}")


# The folder under which the workflow keeps every run's checkpoints (results/checkpoints).
CHECKPOINTS_FOLDER = "checkpoints"


def remove_checkpoints(path: Path) -> None:
    """Remove a finished run's checkpoints (the set-aside unreadable ones stay for a look), then
    the folders they leave empty, up to the `checkpoints` folder that holds them (results/ stays):
    a finished study leaves no empty folders. Outside a `checkpoints` folder the folders stay."""
    path = Path(path)
    for file in checkpoint_files(path):
        file.unlink(missing_ok=True)
    holder = next(
        (p for p in Path(os.path.abspath(path)).parents if p.name == CHECKPOINTS_FOLDER), None
    )
    if holder is not None:
        remove_empty_folders(path.parent, up_to=holder)


def _load_checkpoint(path: Path) -> dict | None:
    """A checkpoint's contents, or None when there is none. One that cannot be read (truncated,
    not a zip, damaged on disk) is set aside as `<name>.corrupt` with a warning, and gives None:
    failing on it would fail every retry of the job."""
    if not path.exists():
        return None
    try:
        # On the CPU: a device short of memory must not pass for a damaged file, and the random
        # state must stay a CPU tensor; load_state_dict moves the rest where it belongs.
        saved = torch.load(path, map_location="cpu", weights_only=False)
        missing = [key for key in CHECKPOINT_KEYS if key not in saved]
        if missing:
            raise KeyError(f"it has no {', '.join(missing)}")
    except MemoryError:
        raise
    except Exception as err:
        aside = path.with_name(f"{path.name}.corrupt")
        os.replace(path, aside)
        log.warning(
            "%s cannot be read (%s: %s); it is set aside as %s and training goes on from the "
            "checkpoint before it, or from the start",
            path,
            type(err).__name__,
            err,
            aside,
        )
        return None
    return saved


def _train_epoch(run: _Run, state: dict, window: _Throughput, on_step, progress: Progress) -> bool:
    """Train on the rest of the current epoch (all of it unless resumed mid-epoch), evaluating and
    checkpointing on the way; True when training stops before the epoch ends."""
    cfg, tokenizer = run.cfg, run.tokenizer
    batches = epoch_batches(run.data, cfg.max_tokens, cfg.seed, state["epoch"])
    for indices in batches[state["batch"] :]:
        with record_function(DATA):
            batch = collate(run.data, indices, tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id)
            batch = batch.to(run.device)
        lr = learning_rate(state["step"] + 1, cfg)
        loss = _train_step(run, batch, lr)
        state["step"] += 1
        state["batch"] += 1
        state["tokens"] += batch.target_tokens
        window.tokens += batch.target_tokens
        if on_step is not None:
            on_step(state["step"])

        if state["step"] % cfg.log_every == 0:
            _log_throughput(run, state, window, loss, lr, progress)
        last = state["step"] >= cfg.max_steps
        if state["step"] % cfg.eval_every == 0 or last:
            with window.paused():
                stop = _evaluate_and_keep_best(run, state) or last
                state["stopped"] = stop
                if run.saves.due(cfg):
                    _save(run, state)
            if stop:
                return True
    _end_of_epoch(run, state)
    return False


def _train_step(run: _Run, batch, lr: float) -> Tensor:
    """One optimizer update on `batch` at learning rate `lr`; returns the loss, still on the
    device (reading it would wait for the device on every step)."""
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    with record_function(FORWARD), autocast_context(run.device, run.bf16):
        loss = run.model.loss(
            batch.src, batch.tgt_in, batch.real, batch.targets, run.cfg.label_smoothing
        )
    run.optimizer.zero_grad(set_to_none=True)
    with record_function(BACKWARD):
        loss.backward()
    with record_function(OPTIMIZER):
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), run.cfg.clip_norm)
        run.optimizer.step()
    return loss


def _log_throughput(
    run: _Run, state: dict, window: _Throughput, loss: Tensor, lr: float, progress: Progress
) -> None:
    """Log the step's loss and the window's throughput, add the window to the run's timed totals
    and open the next window."""
    loss_value = loss.item()  # waits for the device before the clock is read
    seconds = time.perf_counter() - window.start
    state["elapsed"] += seconds
    state["timed_tokens"] += window.tokens
    # The time left is at the pace of steps, evaluations and checkpoints together: the wall
    # clock a user waits on.
    log.info(
        "step %s; epoch %d/%d loss %.3f lr %.2e %.0f target tokens/s",
        progress.describe(state["step"]),
        state["epoch"] + 1,
        run.cfg.max_epochs,
        loss_value,
        lr,
        window.tokens / seconds,
    )
    window.tokens, window.start = 0, time.perf_counter()


def _end_of_epoch(run: _Run, state: dict) -> None:
    """Count the epoch; at the epoch cap, stop with the final weights evaluated (unless this very
    step was just evaluated) and checkpointed."""
    state["epoch"] += 1
    state["batch"] = 0
    if state["epoch"] >= run.cfg.max_epochs:
        if not state["history"] or state["history"][-1]["step"] != state["step"]:
            _evaluate_and_keep_best(run, state)
        state["stopped"] = True
        if run.saves.due(run.cfg):
            _save(run, state)


def _summary(run: _Run, state: dict) -> dict:
    cfg = run.cfg
    return {
        "steps": state["step"],
        "epochs_completed": state["epoch"],
        "select": cfg.select,
        "selected_step": state["best_step"] if cfg.select == "best" else state["step"],
        "stopped_by": _stopped_by(cfg, state),
        "best_step": state["best_step"],
        f"best_dev_{cfg.eval_metric}": state["best"],
        "dev_history": state["history"],
        "target_tokens": state["tokens"],
        "parameters": run.model.num_parameters(),
        "precision": _precision(run.bf16),
        "device": str(run.device),
        # Measured, so different in every run: for logs and benchmarks, never for a result file
        # (those must be the same bytes whenever the configuration is the same).
        TIMING: {
            "seconds": state["elapsed"],
            "target_tokens_per_second": (
                state["timed_tokens"] / state["elapsed"] if state["elapsed"] else None
            ),
        },
    }


def _stopped_by(cfg: TrainConfig, state: dict) -> str:
    """What ended training: `patience` (dev scores stopped improving: the plateau the budget is
    meant to reach), else the cap it hit first, `max_steps` or `max_epochs`."""
    if cfg.select == "best" and state["bad_evals"] >= cfg.patience:
        return "patience"
    return "max_steps" if state["step"] >= cfg.max_steps else "max_epochs"


def split_timing(summary: dict) -> tuple[dict, dict]:
    """The summary without its timings (what results hold) and the timings (what logs hold)."""
    rest = {key: value for key, value in summary.items() if key != TIMING}
    return rest, summary.get(TIMING, {})


def _precision(bf16: bool) -> str:
    return "bf16" if bf16 else "fp32"


def _save(run: _Run, state: dict) -> None:
    began = clock()
    payload = checkpoint_payload(run.model, run.optimizer, state, run.key, run.device)
    save_checkpoint(run.checkpoint, payload)
    run.saves.last = clock()
    log.info("checkpoint at step %d written in %.1f s", state["step"], run.saves.last - began)


def checkpoint_payload(model, optimizer, state: dict, key: str, device: torch.device) -> dict:
    """What a checkpoint holds: the latest weights and optimizer state, the best weights
    (in `state`), and the random state of the host and of the run's own device."""
    return {
        "fingerprint": key,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "rng": torch.get_rng_state(),
        "cuda_rng": rng_state(device),
        "state": state,
    }


def _evaluate_and_keep_best(run: _Run, state: dict) -> bool:
    """Score the dev set, keep the best weights; True when patience has run out."""
    metric = run.cfg.eval_metric
    value = evaluate(run.model, run.tokenizer, run.dev, metric, run.bf16)
    state["history"].append({"step": state["step"], metric: value})
    improved = state["best"] is None or value > state["best"]
    if improved:
        state["best"], state["best_step"], state["bad_evals"] = value, state["step"], 0
        state["best_state"] = {k: v.detach().clone() for k, v in run.model.state_dict().items()}
    else:
        state["bad_evals"] += 1
    log.info(
        "step %d/%d dev %s %.2f (best %.2f at step %d)",
        state["step"],
        run.total_steps,
        metric,
        value,
        state["best"],
        state["best_step"],
    )
    return run.cfg.select == "best" and state["bad_evals"] >= run.cfg.patience
