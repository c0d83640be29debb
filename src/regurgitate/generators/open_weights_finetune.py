"""E1 on an open-weight base: fine-tune a Hugging Face model on a curriculum prefix, full weights
or LoRA (peft), with a plain PyTorch loop over the model.

- Loss on the target tokens only: a causal model sees the chat of the generator's prompt and the
  pair's target as the assistant's turn, and learns the turn alone; a sequence-to-sequence model
  learns the target given the source.
- An optimizer step takes the pairs of the epoch's shuffled order until their target tokens reach
  `max_tokens` (the experiment's token budget), in micro-batches of at most
  `micro_batch_tokens` padded tokens whose gradients accumulate; the loss is the mean over the
  step's target tokens, so the step is the same whatever the micro-batches.
- The learning rate follows the project's schedule (engine.train.learning_rate: linear warm-up,
  then the inverse square root of the step) through a LambdaLR.
- Every `eval_every` steps a checkpoint holds the trainable weights (only the adapter's with
  LoRA), the optimizer, the scheduler, the position in the data and the random state; a killed
  run resumes from it and ends as an uninterrupted run would (on the CPU, bit for bit; see the
  README). With `select: best`, the dev set is translated and scored there too, and the best
  weights are kept.
- On CUDA, bf16 autocast (full: fp32 master weights; LoRA: the frozen base in bf16, the adapters
  in fp32); on the CPU, fp32.
"""

from __future__ import annotations

import logging
import math
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from regurgitate.engine.device import configure
from regurgitate.engine.device import rng_state as device_rng_state
from regurgitate.engine.device import set_rng_state as set_device_rng_state
from regurgitate.engine.metrics import score
from regurgitate.engine.progress import Progress
from regurgitate.engine.train import (
    TrainConfig,
    checkpoint_files,
    fingerprint,
    learning_rate,
    remove_checkpoints,
    save_checkpoint,
)
from regurgitate.generators.open_weights import (
    Loaded,
    chat_text,
    encode_sources,
    generate,
    load,
    to_generation,
    use_bf16,
)
from regurgitate.generators.open_weights_settings import METHODS, OpenWeightsSettings
from regurgitate.io import remove_stale_temporaries

log = logging.getLogger(__name__)
IGNORE = -100  # the label of a token the loss skips


@dataclass(frozen=True)
class Lora:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] | str = "all-linear"


@dataclass(frozen=True)
class FinetuneSettings:
    """The experiment's trainer settings (the `training` block with the experiment's overrides,
    its seed and `select`) and how the weights change (`method`, `lora`)."""

    training: TrainConfig
    method: str = "lora"
    lora: Lora = field(default_factory=Lora)
    # Padded tokens of one forward pass; the step's `max_tokens` accumulate over such passes.
    micro_batch_tokens: int | None = None

    @classmethod
    def from_config(cls, training: dict, method: dict) -> FinetuneSettings:
        if method.get("method", "lora") not in METHODS:
            raise ValueError(f"finetune.method: {method['method']!r} is not one of {METHODS}")
        lora = {k: v for k, v in (method.get("lora") or {}).items() if v is not None}
        if isinstance(lora.get("target_modules"), list | tuple):
            lora["target_modules"] = list(lora["target_modules"])
        return cls(
            training=TrainConfig(**training),
            method=method.get("method", "lora"),
            lora=Lora(**lora),
            micro_batch_tokens=method.get("micro_batch_tokens"),
        )

    def identity(self) -> dict:
        """What a checkpoint must have been written under to be resumed (log_every aside)."""
        record = asdict(self)
        record["training"].pop("log_every", None)
        return record


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]  # causal: IGNORE over the prompt; seq2seq: the target's ids

    @property
    def target_tokens(self) -> int:
        return sum(label != IGNORE for label in self.labels)


def encode_examples(loaded: Loaded, sources: list[str], targets: list[str]) -> list[Example]:
    tokenizer, settings = loaded.tokenizer, loaded.settings
    limit = settings.max_length
    examples = []
    if loaded.seq2seq:
        inputs = tokenizer(sources, truncation=True, max_length=limit)["input_ids"]
        labels = tokenizer(text_target=targets, truncation=True, max_length=limit)["input_ids"]
        return [Example(i, t) for i, t in zip(inputs, labels, strict=True)]
    for source, target in zip(sources, targets, strict=True):
        prompt = chat_text(tokenizer, settings.prompt, source)
        whole = chat_text(tokenizer, settings.prompt, source, answer=target)
        if not whole.startswith(prompt):
            raise ValueError(
                f"generators.{settings.name}: the chat template writes the answer's turn in a "
                "way that does not continue the prompt; the target tokens cannot be told apart"
            )
        head = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        tail = tokenizer(whole[len(prompt) :], add_special_tokens=False)["input_ids"]
        ids = (head + tail)[: 2 * limit]
        examples.append(Example(ids, ([IGNORE] * len(head) + tail)[: 2 * limit]))
    return examples


def epoch_steps(examples: list[Example], budget: int, seed: int, epoch: int) -> list[list[int]]:
    """The optimizer steps of one epoch: its shuffled order (from the seed and the epoch alone,
    so that a resumed run finds the same order) cut where the target tokens reach `budget`."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(len(examples), generator=generator).tolist()
    steps, current, tokens = [], [], 0
    for index in order:
        current.append(index)
        tokens += examples[index].target_tokens
        if tokens >= budget:
            steps.append(current)
            current, tokens = [], 0
    if current:
        steps.append(current)
    return steps


def micro_batches(examples: list[Example], step: list[int], limit: int | None) -> list[list[int]]:
    """A step's pairs in order, cut so that each pass pads to at most `limit` tokens."""
    if not limit:
        return [step]
    batches, current, longest = [], [], 0
    for index in step:
        length = len(examples[index].input_ids) + len(examples[index].labels)
        if current and max(longest, length) * (len(current) + 1) > limit:
            batches.append(current)
            current, longest = [], 0
        current.append(index)
        longest = max(longest, length)
    batches.append(current)
    return batches


def collate(loaded: Loaded, examples: list[Example], rows: list[int]) -> dict:
    """Right-padded tensors of a micro-batch (the training forward pass needs no left pads)."""
    pad = loaded.tokenizer.pad_token_id

    def stack(lists, value):
        width = max(len(x) for x in lists)
        return torch.tensor([x + [value] * (width - len(x)) for x in lists])

    inputs = [examples[i].input_ids for i in rows]
    labels = [examples[i].labels for i in rows]
    batch = {
        "input_ids": stack(inputs, pad),
        "attention_mask": stack([[1] * len(x) for x in inputs], 0),
        "labels": stack(labels, IGNORE),
    }
    return {k: v.to(loaded.device) for k, v in batch.items()}


def summed_loss(model, batch: dict, seq2seq: bool, label_smoothing: float) -> torch.Tensor:
    """The cross-entropy summed over the batch's target tokens."""
    labels = batch["labels"]
    if seq2seq:
        logits = model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels
        ).logits
    else:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        logits, labels = logits[:, :-1], labels[:, 1:]  # a token predicts the next one
    return torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(),
        labels.reshape(-1),
        ignore_index=IGNORE,
        reduction="sum",
        label_smoothing=label_smoothing,
    )


def trainable_state(model, method: str) -> dict:
    if method == "lora":
        from peft import get_peft_model_state_dict

        return {k: v.detach().clone() for k, v in get_peft_model_state_dict(model).items()}
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def load_trainable(model, method: str, state: dict) -> None:
    if method == "lora":
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(model, state)
    else:
        model.load_state_dict(state)


def prepare(settings: OpenWeightsSettings, ft: FinetuneSettings, device: torch.device) -> Loaded:
    """The base model ready to train: full weights in fp32, or LoRA adapters over a frozen base
    (bf16 on a GPU that has it)."""
    bf16 = use_bf16(ft.training.precision, device)
    lora = ft.method == "lora"
    dtype = torch.bfloat16 if (bf16 and lora) else torch.float32
    loaded = load(settings, device, dtype=dtype)
    if lora:
        from peft import LoraConfig, TaskType, get_peft_model

        task = TaskType.SEQ_2_SEQ_LM if loaded.seq2seq else TaskType.CAUSAL_LM
        config = LoraConfig(
            task_type=task,
            r=ft.lora.r,
            lora_alpha=ft.lora.alpha,
            lora_dropout=ft.lora.dropout,
            target_modules=ft.lora.target_modules,
        )
        loaded.model = get_peft_model(loaded.model, config)
    loaded.model.train()
    return loaded


def finetune(
    settings: OpenWeightsSettings,
    ft: FinetuneSettings,
    sources: list[str],
    targets: list[str],
    dev: tuple[list[str], list[str]],
    checkpoint: Path,
    out: Path,
    device: torch.device,
    on_step=None,
) -> dict:
    """Fine-tune the base of `settings` on the pairs and save the result in the folder `out`
    (the adapter only with LoRA; full weights and tokenizer otherwise); returns the summary.
    `checkpoint` is resumed where it matches these settings and data. `on_step(step)` is called
    after each optimizer step (and its checkpoint)."""
    cfg = ft.training
    configure(device, deterministic=cfg.deterministic, strict_fp32=cfg.strict_fp32)
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    loaded = prepare(settings, ft, device)
    model = loaded.model
    bf16 = use_bf16(cfg.precision, device)
    examples = encode_examples(loaded, sources, targets)
    key = fingerprint(asdict(settings), ft.identity(), [(e.input_ids, e.labels) for e in examples])
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: learning_rate(step + 1, cfg) / cfg.lr
    )
    state = {
        "step": 0,
        "epoch": 0,
        "position": 0,  # optimizer steps of the current epoch already taken
        "target_tokens": 0,
        "loss": None,
        "history": [],
        "best": None,
        "best_step": 0,
        "bad_evals": 0,
        "best_state": None,
        "stopped": None,
    }
    resumed = resume(checkpoint, key, model, ft.method, optimizer, scheduler, device)
    if resumed is not None:
        state = resumed
    trainable = sum(p.numel() for p in parameters)
    total = sum(p.numel() for p in model.parameters())
    log.info(
        "%s: %s fine-tuning of %s on %d pairs (%d of %d parameters trainable), lr %g, "
        "%d target tokens a step, %s",
        settings.name, ft.method, settings.model, len(examples), trainable, total, cfg.lr,
        cfg.max_tokens, "bf16" if bf16 else "fp32",
    )  # fmt: skip
    dev_set = (dev[0][: cfg.eval_sentences], dev[1][: cfg.eval_sentences])
    if cfg.select == "best" and resumed is None:
        evaluate(loaded, ft, state, dev_set, bf16)  # the base itself can be the best
    started, window_tokens = time.monotonic(), 0
    # About: an epoch's steps vary a little with its order, cut where the tokens reach a budget.
    per_epoch = len(epoch_steps(examples, cfg.max_tokens, cfg.seed, 0))
    pace = Progress(min(cfg.max_steps, cfg.max_epochs * per_epoch), done_at_start=state["step"])
    while state["stopped"] is None:
        steps = epoch_steps(examples, cfg.max_tokens, cfg.seed, state["epoch"])
        while state["position"] < len(steps):
            step = steps[state["position"]]
            loss, tokens = train_step(loaded, ft, examples, step, optimizer, scheduler, bf16)
            state["step"] += 1
            state["position"] += 1
            state["target_tokens"] += tokens
            state["loss"] = loss
            window_tokens += tokens
            if state["step"] % cfg.log_every == 0:
                rate = window_tokens / max(time.monotonic() - started, 1e-9)
                log.info(
                    "%s: step %s; epoch %d/%d loss %.4f lr %.2e %.0f target tokens/s",
                    settings.name, pace.describe(state["step"]), state["epoch"] + 1,
                    cfg.max_epochs, loss, scheduler.get_last_lr()[0], rate,
                )  # fmt: skip
                started, window_tokens = time.monotonic(), 0
            if state["step"] >= cfg.max_steps:
                state["stopped"] = "max_steps"
            elif state["step"] % cfg.eval_every == 0:
                if cfg.select == "best" and evaluate(loaded, ft, state, dev_set, bf16):
                    state["stopped"] = "patience"
                save(checkpoint, key, model, ft.method, optimizer, scheduler, state, device)
            if on_step:
                on_step(state["step"])
            if state["stopped"]:
                break
        if state["stopped"] is None:
            state["epoch"] += 1
            state["position"] = 0
            if state["epoch"] >= cfg.max_epochs:
                state["stopped"] = "max_epochs"
    if cfg.select == "best":
        if state["stopped"] != "patience":
            evaluate(loaded, ft, state, dev_set, bf16)
        load_trainable(model, ft.method, state["best_state"])
    write_model(loaded, ft.method, out)
    remove_checkpoints(checkpoint)  # the saved model supersedes them
    return summary(settings, ft, state, len(examples), trainable, total)


def train_step(loaded, ft, examples, step, optimizer, scheduler, bf16) -> tuple[float, int]:
    """One optimizer step over a step's pairs: the gradients of its micro-batches add up to
    those of the mean loss over all of its target tokens."""
    cfg = ft.training
    model, device = loaded.model, loaded.device
    tokens = sum(examples[i].target_tokens for i in step)
    total = 0.0
    for rows in micro_batches(examples, step, ft.micro_batch_tokens):
        batch = collate(loaded, examples, rows)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = summed_loss(model, batch, loaded.seq2seq, cfg.label_smoothing)
        (loss / max(tokens, 1)).backward()
        total += loss.item()
    torch.nn.utils.clip_grad_norm_(
        [p for p in model.parameters() if p.requires_grad], cfg.clip_norm
    )
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return total / max(tokens, 1), tokens


def evaluate(loaded: Loaded, ft: FinetuneSettings, state: dict, dev, bf16: bool) -> bool:
    """Translate the dev sentences with the model as it is (greedy, through the generator's
    code) and keep the best weights; True when patience has run out."""
    cfg = ft.training
    loaded.model.eval()
    with torch.autocast(device_type=loaded.device.type, dtype=torch.bfloat16, enabled=bf16):
        hypotheses = generate(loaded, encode_sources(loaded, dev[0]))
    texts = [to_generation(loaded, s, h, 0).target for s, h in zip(dev[0], hypotheses, strict=True)]
    loaded.model.train()
    value = score(texts, dev[1])[cfg.eval_metric]
    state["history"].append({"step": state["step"], cfg.eval_metric: value})
    if state["best"] is None or value > state["best"]:
        state["best"], state["best_step"], state["bad_evals"] = value, state["step"], 0
        state["best_state"] = trainable_state(loaded.model, ft.method)
    else:
        state["bad_evals"] += 1
    log.info("step %d dev %s %.2f (best %.2f at step %d)", state["step"], cfg.eval_metric,
             value, state["best"], state["best_step"])  # fmt: skip
    return state["bad_evals"] >= cfg.patience


def save(checkpoint, key, model, method, optimizer, scheduler, state, device) -> None:
    save_checkpoint(
        checkpoint,
        {
            "fingerprint": key,
            "model": trainable_state(model, method),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": torch.get_rng_state(),
            "cuda_rng": device_rng_state(device),
            "python_rng": random.getstate(),
            "state": state,
        },
    )


def resume(checkpoint, key, model, method, optimizer, scheduler, device) -> dict | None:
    """Load the latest readable checkpoint written for this key; its progress, or None."""
    remove_stale_temporaries(checkpoint)
    for path in checkpoint_files(checkpoint):
        if not path.exists():
            continue
        try:
            saved = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as err:  # a damaged file: the one before it, or the start
            log.warning("%s cannot be read (%s); trying the checkpoint before it", path, err)
            continue
        if saved.get("fingerprint") != key:
            log.info("ignoring %s: it was written for other settings or data", path)
            return None
        load_trainable(model, method, saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["rng"])
        set_device_rng_state(saved.get("cuda_rng"), device)
        random.setstate(saved["python_rng"])
        log.info("resuming from %s at step %d", path, saved["state"]["step"])
        return saved["state"]
    return None


def write_model(loaded: Loaded, method: str, out: Path) -> None:
    """The fine-tuned model as one folder, whole or not at all: the adapter with LoRA (the
    base stays where it is), else the full weights with the tokenizer."""
    out = Path(out)
    aside = out.with_name(f".{out.name}.writing")
    shutil.rmtree(aside, ignore_errors=True)  # what a killed attempt was writing
    loaded.model.save_pretrained(aside)
    if method == "full":
        loaded.tokenizer.save_pretrained(aside)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(aside, out)


def summary(settings, ft, state, pairs, trainable, total) -> dict:
    cfg = ft.training
    record = {
        "base": settings.model,
        "revision": settings.revision,
        "method": ft.method,
        "lora": asdict(ft.lora) if ft.method == "lora" else None,
        "pairs": pairs,
        "steps": state["step"],
        "epochs": state["epoch"] + (state["position"] > 0),
        "target_tokens": state["target_tokens"],
        "final_loss": state["loss"],
        "stopped_by": state["stopped"],
        "select": cfg.select,
        "trainable_parameters": trainable,
        "parameters": total,
        "dev_history": state["history"],
    }
    if cfg.select == "best":
        record.update(best=state["best"], best_step=state["best_step"])
    if record["final_loss"] is not None and not math.isfinite(record["final_loss"]):
        raise FloatingPointError(f"{settings.name}: the training loss is {record['final_loss']}")
    return record
