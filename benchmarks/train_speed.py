"""Training throughput, model FLOPs utilisation and peak memory: the project's trainer against
Hugging Face's MarianMTModel, and against the trainer before issue 27 (benchmarks/
baseline_trainer.py).

    python benchmarks/train_speed.py [--steps 60] [--rounds 3] [--threads 1] [--device cpu]
        [--sides project,reference] [--precision auto]
    python benchmarks/train_speed.py --sides project,baseline     # issue 27's side by side
    python benchmarks/train_speed.py --profile --sides project,baseline --steps 20

Both sides train a model of the same dimensions (layers, d_model, heads, feed-forward, joint
vocabulary, tied embeddings) on the same Multi30k pairs, tokenized by one SentencePiece model,
for the same number of steps, each in its own fresh interpreter, rounds interleaved (project,
reference, reference, project, ...). The project side calls `regurgitate.engine.train.train`
with its token-budget, length-bucketed batches; the reference is a plain PyTorch loop batching
the way Hugging Face's translation examples do: shuffled, a fixed number of sentences padded to
the longest, fp32, AdamW with linear warm-up. The reference's batch size is chosen so that its
batches hold as many real target tokens on average as the project's. The baseline side is the
model and training step of git b1a659c, frozen in benchmarks/baseline_trainer.py, on the
project's batches in the project's precision. Throughput counts real (non-padding) target tokens,
EOS included, on all sides; the project and baseline sides also per CPU second (steps 2 to the
last), which a loaded machine's other jobs stretch less. `--jobs 2` runs two copies of each side
at once (as the CPU preset runs two training jobs on two cores) and reports their mean. Peak
memory is the process's peak resident set size on CPU (VmHWM) or torch.cuda.max_memory_allocated
on CUDA, both absolute and above what the process held before the model was built (imports and
data excluded).

Model FLOPs utilisation (MFU): each side's model FLOPs per second (`step_flops`: forward and
backward, counted from the architecture and the real tokens of each batch) over the GEMM rate of
the same machine at the same precision, thread count and matrix shapes (`gemm_side`: the
products of the model's Linear layers and vocabulary projection, forward and both backward
products, at the project's mean batch shapes), measured in a fresh interpreter in every round.
On CUDA the dense peak of the device (the footprint's table) is reported beside it.

`--profile` splits the steps of each of our trainers (project, baseline) with torch.profiler
into data, products, attention, softmax, layer norm, dropout masks, optimizer and the rest
(`step_profile`). Writes benchmarks/results/train_speed.json (train_profile.json) and prints the
medians of the per-round ratios."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import common

SIDES = ("project", "baseline", "reference")
# What the sides are compared by, median over rounds of the per-round ratio.
RATIOS = ("target_tokens_per_second", "target_tokens_per_cpu_second", "peak_mb", "training_peak_mb")
# What `--profile` counts a training step's time as, in this order (`step_profile`).
CATEGORIES = (
    "linear and vocabulary products",
    "attention products",
    "attention softmax",
    "attention, other (masks, scaling)",
    "vocabulary log-softmax and loss",
    "layer norm",
    "dropout masks",
    "other elementwise and memory",
    "python and dispatch",
    "optimizer (clip, AdamW, zero_grad)",
    "data (collate)",
    "outside the step's parts",
)


def arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_arguments(parser)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--max-tokens", type=int, default=2048, help="project batch budget")
    parser.add_argument(
        "--precision", default="auto", help="project and baseline: auto, fp32 or bf16"
    )
    parser.add_argument(
        "--deterministic", action="store_true", help="project: training.deterministic: true"
    )
    parser.add_argument("--batch-size", type=int, default=0, help="reference; 0: matched")
    parser.add_argument(
        "--sides",
        default="project,reference",
        help="the sides compared, the first against each other: project, baseline, reference",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="copies of each side run at once, as the CPU preset runs two training jobs on two "
        "cores: throughput is their mean",
    )
    parser.add_argument("--no-gemm", action="store_true", help="leave the GEMM rate (MFU) out")
    parser.add_argument(
        "--syncs", action="store_true", help="count host synchronisations per step instead"
    )
    parser.add_argument(
        "--profile", action="store_true", help="split the steps with torch.profiler instead"
    )
    parser.add_argument("--side", choices=(*SIDES, "gemm"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.sides = tuple(args.sides.split(","))
    unknown = set(args.sides) - set(SIDES)
    if unknown or len(args.sides) < 2 and not args.profile:
        parser.error(f"--sides takes two or more of {', '.join(SIDES)}")
    return args


def encoded(args):
    from regurgitate.engine.batching import encode_pairs

    tokenizer, sources, targets = common.tokenizer_for(args)
    return tokenizer, sources, encode_pairs(tokenizer, sources, targets, args.max_positions)


def step_flops(args, vocab: int, src_lengths, tgt_lengths) -> float:
    """Model FLOPs of one training step (forward and backward) on sentences whose real lengths,
    EOS (source) and BOS or EOS (target) included, are `src_lengths` and `tgt_lengths`, counted
    from the architecture: embeddings free, every Linear 2 x in x out per real token of its
    input, attention scores and values 2 x 2 x len_q x len_k x d_model per layer (per sentence,
    real lengths; the decoder's causal self-attention counted whole), backward twice the
    forward. Padding, layer norm, softmax and the loss are not counted."""
    d, f, layers = args.d_model, args.ffn_dim, args.layers
    src, tgt = sum(src_lengths), sum(tgt_lengths)
    # In x out of the Linear layers, per token: qkv and output (4 d^2) and feed-forward (2 d f)
    # in the encoder; self qkv and output, cross q and output (6 d^2) and feed-forward in the
    # decoder, whose cross-attention keys and values (2 d^2) project the source; the tied
    # vocabulary projection (d V) of every real target token.
    linear = layers * ((4 * d * d + 2 * d * f) * src + (6 * d * d + 2 * d * f) * tgt)
    linear += layers * 2 * d * d * src + d * vocab * tgt
    pairs = zip(src_lengths, tgt_lengths, strict=True)
    attention = layers * sum(s * s + t * t + t * s for s, t in pairs)
    forward = 2 * linear + 2 * 2 * attention * d
    return 3.0 * forward


def batch_lengths(data, indices) -> tuple[list[int], list[int]]:
    """Real source and target lengths of a batch's sentences, as the model sees them."""
    return [len(data.sources[i]) + 1 for i in indices], [len(data.targets[i]) + 1 for i in indices]


def batches_flops(args, vocab: int, data, batches) -> float:
    return sum(step_flops(args, vocab, *batch_lengths(data, b)) for b in batches)


def project_batches(args, data):
    """The batches of the project's first `--steps` steps (the first epoch's)."""
    from regurgitate.engine.batching import epoch_batches

    batches = epoch_batches(data, args.max_tokens, args.seed, 0)
    if args.steps > len(batches):
        raise SystemExit(f"--steps {args.steps} is more than an epoch ({len(batches)} batches)")
    return batches[: args.steps]


def train_config(args, steps: int):
    from regurgitate.engine.train import TrainConfig

    return TrainConfig(
        max_tokens=args.max_tokens,
        max_steps=steps,
        warmup_steps=max(1, args.steps // 2),
        eval_every=steps,
        log_every=steps,  # one throughput window: all steps, as the reference is timed
        eval_sentences=4,
        seed=args.seed,
        precision=args.precision,
        deterministic=args.deterministic,
    )


class CpuClock:
    """The process's CPU seconds at the end of each step (an `on_step` hook): steps 2 to the
    last, in CPU time, are what a loaded machine's other work does not stretch (the wall clock
    also counts the time the scheduler gives the other jobs)."""

    def __init__(self):
        self.at: dict[int, float] = {}

    def __call__(self, step: int) -> None:
        self.at[step] = time.process_time()

    def rate(self, data, batches) -> float:
        """Target tokens per CPU second of steps 2 to the last."""
        last = max(self.at)
        tokens = sum(len(data.targets[i]) + 1 for b in batches[1:last] for i in b)
        return tokens / (self.at[last] - self.at[1])


def project_side(args) -> dict:
    from regurgitate.engine.train import TIMING, DevSet, train

    tokenizer, sources, data = encoded(args)
    batches = project_batches(args, data)
    flops = batches_flops(args, tokenizer.vocab_size, data, batches)
    clock = CpuClock()
    common.set_threads(args.threads)
    common.reset_peak_memory(args.device)
    before, _ = common.memory_mb(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        _, summary = train(
            common.project_model_config(args, tokenizer.vocab_size),
            train_config(args, args.steps),
            data,
            DevSet(sources[:4], sources[:4]),
            tokenizer,
            Path(tmp) / "checkpoint.pt",
            device=args.device,
            on_step=clock,
        )
    _, peak = common.memory_mb(args.device)
    throughput = summary[TIMING]["target_tokens_per_second"]
    seconds = summary["target_tokens"] / throughput
    return {
        "target_tokens_per_second": throughput,
        "target_tokens_per_cpu_second": clock.rate(data, batches),
        "target_tokens": summary["target_tokens"],
        "seconds": seconds,
        "flops_per_second": flops / seconds,
        "precision": summary["precision"],
        "peak_mb": peak,
        "training_peak_mb": peak - before,
    }


def baseline_side(args) -> dict:
    """The trainer before issue 27 (benchmarks/baseline_trainer.py) on the project's batches."""
    import baseline_trainer
    import torch

    from regurgitate.engine.device import use_bf16

    tokenizer, _, data = encoded(args)
    batches = project_batches(args, data)
    flops = batches_flops(args, tokenizer.vocab_size, data, batches)
    device = torch.device(args.device)
    bf16 = use_bf16(args.precision, device)
    common.set_threads(args.threads)
    common.reset_peak_memory(args.device)
    before, _ = common.memory_mb(args.device)
    clock = CpuClock()
    run = baseline_trainer.train_steps(
        common.project_model_config(args, tokenizer.vocab_size),
        train_config(args, args.steps),
        data,
        tokenizer,
        batches,
        bf16=bf16,
        device=device,
        on_step=clock,
    )
    common.synchronize(args.device)
    _, peak = common.memory_mb(args.device)
    return {
        "target_tokens_per_second": run["target_tokens_per_second"],
        "target_tokens_per_cpu_second": clock.rate(data, batches),
        "target_tokens": run["target_tokens"],
        "seconds": run["seconds"],
        "flops_per_second": flops / run["seconds"],
        "precision": "bf16" if bf16 else "fp32",
        "peak_mb": peak,
        "training_peak_mb": peak - before,
    }


def step_products(args, vocab: int, src: float, tgt: float, real: float) -> dict:
    """The matrix products (rows, in, out) of the model's Linear layers and vocabulary
    projection in one training step, with how often each comes: `src` and `tgt` padded tokens
    of a batch (what the Linear layers multiply), `real` target tokens (what the vocabulary
    projection multiplies)."""
    d, f, layers = args.d_model, args.ffn_dim, args.layers
    counts: dict = {}
    for shape, n in (
        ((src, d, 3 * d), layers),  # encoder qkv
        ((src, d, d), layers),  # encoder output
        ((src, d, f), layers),
        ((src, f, d), layers),
        ((tgt, d, 3 * d), layers),  # decoder self qkv
        ((tgt, d, d), 3 * layers),  # self output, cross q, cross output
        ((src, d, 2 * d), layers),  # cross k, v
        ((tgt, d, f), layers),
        ((tgt, f, d), layers),
        ((real, d, vocab), 1),
    ):
        key = (round(shape[0]), shape[1], shape[2])
        counts[key] = counts.get(key, 0) + n
    return counts


def gemm_side(args) -> dict:
    """The GEMM rate this machine reaches at the training step's matrix shapes, precision and
    thread count: each product of `step_products` timed as the training step computes it,
    forward x @ W.T and backward g @ W and g.T @ x (median of up to 5 timings, 2 seconds at most
    per product), summed with their counts: their FLOPs over their time."""
    import torch

    from regurgitate.engine.batching import collate
    from regurgitate.engine.device import use_bf16

    tokenizer, _, data = encoded(args)
    batches = [
        collate(data, b, tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id)
        for b in project_batches(args, data)
    ]
    src = statistics.mean(b.src.numel() for b in batches)
    tgt = statistics.mean(b.tgt_in.numel() for b in batches)
    real = statistics.mean(b.target_tokens for b in batches)
    device = torch.device(args.device)
    dtype = torch.bfloat16 if use_bf16(args.precision, device) else torch.float32
    common.set_threads(args.threads)
    flops = seconds = 0.0
    shapes = []
    for (m, k, n), count in step_products(args, tokenizer.vocab_size, src, tgt, real).items():
        x = torch.randn(m, k, device=device, dtype=dtype)
        w = torch.randn(n, k, device=device, dtype=dtype)
        g = torch.randn(m, n, device=device, dtype=dtype)
        took = [
            timed(args.device, torch.mm, x, w.t()),
            timed(args.device, torch.mm, g, w),
            timed(args.device, torch.mm, g.t(), x),
        ]
        flops += count * 3 * 2 * m * k * n
        seconds += count * sum(took)
        shapes.append(
            {"shape": [m, k, n], "count": count, "gflops": 6 * m * k * n / sum(took) / 1e9}
        )
    return {
        "precision": "bf16" if dtype == torch.bfloat16 else "fp32",
        "gemm_flops_per_second": flops / seconds,
        "shapes": shapes,
    }


def timed(device: str, product, *operands, reps: int = 5, budget: float = 2.0) -> float:
    """Median seconds of `product(*operands)` after one warm-up call."""
    product(*operands)
    common.synchronize(device)
    times: list[float] = []
    while len(times) < reps and sum(times) < budget:
        start = time.perf_counter()
        product(*operands)
        common.synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def sync_profile(args) -> dict:
    """Host-synchronising operators per training step of the project's trainer, counted by
    torch.profiler over `--steps` steps (the first step, dev evaluation and logging left out:
    the loss is read once per `log_every` steps on purpose)."""
    from torch.profiler import ProfilerActivity, profile, schedule

    from regurgitate.engine.train import DevSet, TrainConfig, train

    tokenizer, sources, data = encoded(args)
    end = args.steps + 2
    cfg = TrainConfig(
        max_tokens=args.max_tokens,
        max_steps=end,
        warmup_steps=max(1, args.steps // 2),
        eval_every=end,
        log_every=end,
        eval_sentences=4,
        seed=args.seed,
        precision=args.precision,
    )
    common.set_threads(args.threads)
    # Steps 2 to steps + 1: the window opens after the first step and closes before the last
    # step's evaluation.
    profiler = profile(
        activities=[ProfilerActivity.CPU],
        schedule=schedule(wait=0, warmup=1, active=args.steps, repeat=1),
    )
    calls: list = []
    counting = common.counting_tolist()

    def on_step(step: int) -> None:
        profiler.step()
        if step == 1:  # the profiler's window opens
            calls.append(counting.__enter__())
        if step == args.steps + 1:
            counting.__exit__(None, None, None)

    with profiler, tempfile.TemporaryDirectory() as tmp:
        train(
            common.project_model_config(args, tokenizer.vocab_size),
            cfg,
            data,
            DevSet(sources[:4], sources[:4]),
            tokenizer,
            Path(tmp) / "checkpoint.pt",
            device=args.device,
            on_step=on_step,
        )
    counts = common.host_sync_counts(profiler.events(), len(calls[0]))
    return {
        "steps": args.steps,
        "per_step": {name: count / args.steps for name, count in counts.items()},
    }


def profile_side(args) -> dict:
    """`step_profile` of steps 2 to steps + 1 of one of our trainers (`args.side`: project or
    baseline) on the project's batches; the first step (allocation, warm-up) left out."""
    import torch
    from torch.profiler import ProfilerActivity, profile, schedule

    from regurgitate.engine.train import DevSet, train

    tokenizer, sources, data = encoded(args)
    end = args.steps + 2
    common.set_threads(args.threads)
    profiler = profile(
        activities=[ProfilerActivity.CPU],
        schedule=schedule(wait=0, warmup=1, active=args.steps, repeat=1),
    )
    model_cfg = common.project_model_config(args, tokenizer.vocab_size)
    with profiler:
        if args.side == "project":
            with tempfile.TemporaryDirectory() as tmp:
                _, summary = train(
                    model_cfg,
                    train_config(args, end),
                    data,
                    DevSet(sources[:4], sources[:4]),
                    tokenizer,
                    Path(tmp) / "checkpoint.pt",
                    device=args.device,
                    on_step=lambda _: profiler.step(),
                )
            precision = summary["precision"]
        else:
            import baseline_trainer

            from regurgitate.engine.batching import epoch_batches
            from regurgitate.engine.device import use_bf16

            bf16 = use_bf16(args.precision, torch.device(args.device))
            baseline_trainer.train_steps(
                model_cfg,
                train_config(args, end),
                data,
                tokenizer,
                epoch_batches(data, args.max_tokens, args.seed, 0)[:end],
                bf16=bf16,
                device=args.device,
                on_step=lambda _: profiler.step(),
            )
            precision = "bf16" if bf16 else "fp32"
    return step_profile(profiler.events(), args.steps) | {"precision": precision}


# Operators by what they compute, for `step_profile`.
LINEAR_PRODUCTS = {"aten::mm", "aten::addmm", "aten::addmm_", "aten::linear", "aten::matmul"}
ATTENTION_PRODUCTS = {"aten::bmm", "aten::baddbmm"}
SOFTMAX = {"aten::_softmax", "aten::_softmax_backward_data", "aten::_safe_softmax"}
LOG_SOFTMAX = {"aten::_log_softmax", "aten::_log_softmax_backward_data"}
LAYER_NORM = {"aten::native_layer_norm", "aten::native_layer_norm_backward"}
MASKS = {"aten::bernoulli_", "aten::bernoulli"}


def step_profile(events, steps: int) -> dict:
    """Milliseconds per step by category (CATEGORIES), from a torch.profiler trace whose
    steps carry engine.train's labels (data, forward, backward, optimizer). Data and optimizer
    are their labels' whole time; inside forward and backward each operator's own time goes to
    what it computes (attention and loss operators known also by their scaled_dot_product_
    attention, cross_entropy or _ProjectedCrossEntropy ancestors), and the rest of those labels'
    time, Python between operators and the dispatcher, to `python and dispatch`."""
    from regurgitate.engine.model import DROPOUT_MASK
    from regurgitate.engine.train import BACKWARD, DATA, FORWARD, OPTIMIZER

    totals = dict.fromkeys(CATEGORIES, 0.0)
    wall = labelled = 0.0
    for event in events:
        name = event.name
        if name.startswith("ProfilerStep"):
            wall += event.cpu_time_total
            continue
        if name in (DATA, OPTIMIZER) or name.startswith("Optimizer.zero_grad"):
            key = "data (collate)" if name == DATA else "optimizer (clip, AdamW, zero_grad)"
            totals[key] += event.cpu_time_total
            labelled += event.cpu_time_total
            continue
        ancestors = []
        parent = event.cpu_parent
        while parent is not None:
            ancestors.append(parent.name)
            parent = parent.cpu_parent
        if name in (FORWARD, BACKWARD):
            labelled += event.cpu_time_total
        if not {FORWARD, BACKWARD} & {name, *ancestors}:
            continue
        totals[_category(name, ancestors, DROPOUT_MASK)] += event.self_cpu_time_total
    totals["outside the step's parts"] = wall - labelled
    per_step = {key: value / steps / 1e3 for key, value in totals.items()}
    step_ms = wall / steps / 1e3
    return {
        "steps": steps,
        "ms_per_step": step_ms,
        "ms": per_step,
        "share": {key: value / step_ms for key, value in per_step.items()},
    }


def _category(name: str, ancestors: list[str], mask_label: str) -> str:
    attention = any("scaled_dot_product" in a for a in ancestors)
    loss = any("ProjectedCrossEntropy" in a or "cross_entropy" in a for a in ancestors)
    if not name.startswith("aten::"):
        return "python and dispatch"  # labels, autograd nodes: their own time is Python's
    if name in MASKS or mask_label in ancestors:
        return "dropout masks"
    if name in LINEAR_PRODUCTS:
        return "linear and vocabulary products"
    if name in ATTENTION_PRODUCTS:
        return "attention products"
    if name in SOFTMAX:
        return "attention softmax"
    if name in LOG_SOFTMAX or loss or name.startswith("aten::nll_loss"):
        return "vocabulary log-softmax and loss"
    if name in LAYER_NORM:
        return "layer norm"
    if attention:
        return "attention, other (masks, scaling)"
    return "other elementwise and memory"


def reference_side(args) -> dict:
    import torch
    import torch.nn.functional as F
    from transformers import get_linear_schedule_with_warmup
    from transformers.models.marian.modeling_marian import shift_tokens_right

    from regurgitate.engine.batching import pad

    tokenizer, _, data = encoded(args)
    common.set_threads(args.threads)
    torch.manual_seed(args.seed)
    common.reset_peak_memory(args.device)
    before, _ = common.memory_mb(args.device)
    model = common.reference_model(args, tokenizer).to(args.device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=7e-4, betas=(0.9, 0.98), eps=1e-9)
    schedule = get_linear_schedule_with_warmup(optimizer, max(1, args.steps // 2), args.steps)
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(args.seed)).tolist()
    size = args.batch_size
    tokens = 0
    flops = 0.0
    common.synchronize(args.device)
    start = time.perf_counter()
    for step in range(args.steps):
        indices = [order[(step * size + j) % len(order)] for j in range(size)]
        input_ids = pad([data.sources[i] + [tokenizer.eos_id] for i in indices], tokenizer.pad_id)
        labels = pad([data.targets[i] + [tokenizer.eos_id] for i in indices], -100)
        decoder_input_ids = shift_tokens_right(labels, tokenizer.pad_id, tokenizer.bos_id)
        input_ids, labels = input_ids.to(args.device), labels.to(args.device)
        logits = model(
            input_ids=input_ids,
            attention_mask=input_ids != tokenizer.pad_id,
            decoder_input_ids=decoder_input_ids.to(args.device),
        ).logits
        loss = F.cross_entropy(
            logits.view(-1, logits.shape[-1]), labels.view(-1), label_smoothing=0.1
        )
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += int((labels != -100).sum())
        flops += step_flops(args, tokenizer.vocab_size, *batch_lengths(data, indices))
    loss.item()
    common.synchronize(args.device)
    seconds = time.perf_counter() - start
    _, peak = common.memory_mb(args.device)
    return {
        "target_tokens_per_second": tokens / seconds,
        "target_tokens": tokens,
        "seconds": seconds,
        "flops_per_second": flops / seconds,
        "precision": "fp32",
        "peak_mb": peak,
        "training_peak_mb": peak - before,
        "batch_size": size,
    }


def batching(args) -> dict:
    """The project's padding fraction, and the reference batch size with as many real target
    tokens per batch as the project's batches hold on average."""
    import torch

    from regurgitate.engine.batching import collate, epoch_batches, pad, padding_fraction

    tokenizer, _, data = encoded(args)
    ids = (tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id)
    batches = [collate(data, b, *ids) for b in epoch_batches(data, args.max_tokens, args.seed, 0)]
    per_batch = statistics.mean(b.target_tokens for b in batches)
    per_sentence = statistics.mean(len(t) + 1 for t in data.targets)
    size = args.batch_size or max(1, round(per_batch / per_sentence))
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(args.seed)).tolist()
    padded = real = 0
    for start in range(0, len(order) - size + 1, size):
        rows = [data.targets[i] + [tokenizer.eos_id] for i in order[start : start + size]]
        padded += pad(rows, -1).numel()
        real += sum(len(r) for r in rows)
    return {
        "project_padding_fraction": padding_fraction(batches),
        "reference_padding_fraction": 1 - real / padded,
        "project_mean_sentences_per_batch": statistics.mean(len(b.tgt_out) for b in batches),
        "real_target_tokens_per_batch": per_batch,
        "reference_batch_size": size,
    }


def run_jobs(side: str, argv: list[str], jobs: int) -> dict:
    """`jobs` fresh interpreters of `side` at once; with more than one, the mean of their
    throughputs and FLOP rates (GEMM rates too: the GEMM side runs as many copies), the largest
    peak memory, and each job's result."""
    if jobs == 1:
        return common.run_side(Path(__file__), side, argv)
    with ThreadPoolExecutor(jobs) as pool:
        results = list(pool.map(lambda _: common.run_side(Path(__file__), side, argv), range(jobs)))
    rates = (
        "target_tokens_per_second",
        "target_tokens_per_cpu_second",
        "flops_per_second",
        "seconds",
        "gemm_flops_per_second",
    )
    mean = {key: statistics.mean(r[key] for r in results) for key in rates if key in results[0]}
    peaks = {
        key: max(r[key] for r in results)
        for key in ("peak_mb", "training_peak_mb")
        if key in results[0]
    }
    return results[0] | mean | peaks | {"jobs": results}


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_profiles(args, argv: list[str]) -> None:
    sides = [side for side in args.sides if side != "reference"]
    profiles = {side: common.run_side(Path(__file__), side, argv) for side in sides}
    width = max(map(len, CATEGORIES))
    print(f"{'ms per step':<{width}} " + " ".join(f"{side:>18}" for side in sides))
    for key in (*CATEGORIES, "total"):
        cells = []
        for side in sides:
            ms = profiles[side]["ms_per_step"] if key == "total" else profiles[side]["ms"][key]
            cells.append(f"{ms:8.1f} ({100 * ms / profiles[side]['ms_per_step']:5.1f}%)")
        print(f"{key:<{width}} " + " ".join(f"{c:>18}" for c in cells))
    result = {
        "benchmark": "train_profile",
        "command": "python benchmarks/train_speed.py " + " ".join(argv),
        "machine": common.machine(),
        "load_average": load_average(),
        "settings": {k: v for k, v in vars(args).items() if k != "side"}
        | {"pairs": str(args.pairs)},
        "profiles": profiles,
    }
    print(f"written to {common.write_result('train_profile.json', result)}")


def main() -> None:
    args = arguments()
    if args.syncs:
        result = sync_profile(args) | {"machine": common.machine(), "settings": vars(args)}
        path = common.write_result("train_syncs.json", result)
        print(json.dumps(result["per_step"], indent=2))
        print(f"written to {path}")
        return
    if args.side is not None:
        if args.profile:
            print(json.dumps(profile_side(args)))
            return
        side = {
            "project": project_side,
            "baseline": baseline_side,
            "reference": reference_side,
            "gemm": gemm_side,
        }[args.side]
        print(json.dumps(side(args)))
        return
    argv = sys.argv[1:]
    if args.profile:
        run_profiles(args, argv)
        return
    shape = batching(args)
    argv += ["--batch-size", str(shape["reference_batch_size"])]
    rounds = []
    for r in range(args.rounds):
        order = args.sides if r % 2 == 0 else args.sides[::-1]
        result: dict = {"load_average_before": load_average()}
        result |= {side: run_jobs(side, argv, args.jobs) for side in order}
        if not args.no_gemm:
            result["gemm"] = run_jobs("gemm", argv, args.jobs)
        result["load_average_after"] = load_average()
        rounds.append(result)
        print(
            f"round {r + 1}: "
            + ", ".join(f"{s} {result[s]['target_tokens_per_second']:.0f}" for s in args.sides)
            + " target tokens/s"
            + "".join(
                f", {s} {result[s]['target_tokens_per_cpu_second']:.0f}"
                for s in args.sides
                if "target_tokens_per_cpu_second" in result[s]
            )
            + " per CPU second; peak "
            + " / ".join(f"{result[s]['peak_mb']:.0f}" for s in args.sides)
            + " MB"
            + (
                f"; GEMM {result['gemm']['gemm_flops_per_second'] / 1e9:.1f} GFLOP/s, MFU "
                + " / ".join(
                    f"{result[s]['flops_per_second'] / result['gemm']['gemm_flops_per_second']:.2f}"
                    for s in args.sides
                )
                if "gemm" in result
                else ""
            )
            + f"; load {result['load_average_before'][0]}",
            flush=True,
        )
    first = args.sides[0]
    ratios = {
        f"{first}_over_{other}": {
            key: common.median_ratio(rounds, key, first, other)
            for key in RATIOS
            if key in rounds[0][first] and key in rounds[0][other]
        }
        | {
            f"{key}_rounds": [r[first][key] / r[other][key] for r in rounds]
            for key in RATIOS[:2]
            if key in rounds[0][first] and key in rounds[0][other]
        }
        for other in args.sides[1:]
    }
    result = {
        "benchmark": "train_speed",
        "command": "python benchmarks/train_speed.py " + " ".join(argv[:-2]),
        "machine": common.machine(),
        "settings": {k: v for k, v in vars(args).items() if k != "side"}
        | {"pairs": str(args.pairs)},
        "batching": shape,
        "ratios": ratios,
        "rounds": rounds,
    }
    if not args.no_gemm:
        gemm = statistics.median(r["gemm"]["gemm_flops_per_second"] for r in rounds)
        result["gemm_flops_per_second"] = gemm
    for side in args.sides:
        flops = statistics.median(r[side]["flops_per_second"] for r in rounds)
        result[f"{side}_model_flops_per_second"] = flops
        if not args.no_gemm:
            # Medians over rounds, each side's and the GEMM rate's: a GEMM rate and a training
            # run a minute apart on a shared machine can meet very different loads.
            result[f"{side}_mfu"] = flops / gemm
        peak = common.gpu_peak_tflops(rounds[0][side]["precision"])
        if peak:
            result[f"{side}_mfu_of_device_peak"] = flops / (peak * 1e12)
    path = common.write_result("train_speed.json", result)
    summary = {key: value for key, value in result.items() if key.endswith(("mfu", "_second"))}
    print(json.dumps({"ratios": ratios, "batching": shape} | summary, indent=2))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
