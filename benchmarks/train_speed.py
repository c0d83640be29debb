"""Training throughput and peak memory: the project's trainer against Hugging Face's MarianMTModel.

    python benchmarks/train_speed.py [--steps 60] [--rounds 3] [--threads 1] [--device cpu]

Both sides train a model of the same dimensions (layers, d_model, heads, feed-forward, joint
vocabulary, tied embeddings) on the same Multi30k pairs, tokenized by one SentencePiece model,
for the same number of steps, each in its own fresh interpreter, rounds interleaved (project,
reference, reference, project, ...). The project side calls `regurgitate.engine.train.train`
with its token-budget, length-bucketed batches; the reference is a plain PyTorch loop batching
the way Hugging Face's translation examples do: shuffled, a fixed number of sentences padded to
the longest, fp32, AdamW with linear warm-up. The reference's batch size is chosen so that its
batches hold as many real target tokens on average as the project's. Throughput counts real
(non-padding) target tokens, EOS included, on both sides. Peak memory is the process's peak
resident set size on CPU (VmHWM) or torch.cuda.max_memory_allocated on CUDA, both absolute and
above what the process held before the model was built (imports and data excluded). Writes
benchmarks/results/train_speed.json and prints the medians of the per-round ratios."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import common

SIDES = ("project", "reference")


def arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_arguments(parser)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--max-tokens", type=int, default=2048, help="project batch budget")
    parser.add_argument("--precision", default="auto", help="project: auto, fp32 or bf16")
    parser.add_argument(
        "--deterministic", action="store_true", help="project: training.deterministic: true"
    )
    parser.add_argument("--batch-size", type=int, default=0, help="reference; 0: matched")
    parser.add_argument(
        "--syncs", action="store_true", help="count host synchronisations per step instead"
    )
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def encoded(args):
    from regurgitate.engine.batching import encode_pairs

    tokenizer, sources, targets = common.tokenizer_for(args)
    return tokenizer, sources, encode_pairs(tokenizer, sources, targets, args.max_positions)


def training_flops(args, vocab: int, src_tokens: int, tgt_tokens: int) -> float:
    """6 x parameters touched per token (forward and backward), attention scores left out."""
    d, f = args.d_model, args.ffn_dim
    encoder = args.layers * (4 * d * d + 2 * d * f)
    decoder = args.layers * (8 * d * d + 2 * d * f) + vocab * d
    return 6.0 * (encoder * src_tokens + decoder * tgt_tokens)


def project_side(args) -> dict:
    from regurgitate.engine.batching import epoch_batches
    from regurgitate.engine.train import TIMING, DevSet, TrainConfig, train

    tokenizer, sources, data = encoded(args)
    batches = epoch_batches(data, args.max_tokens, args.seed, 0)[: args.steps]
    src_tokens = sum(len(data.sources[i]) + 1 for b in batches for i in b)
    tgt_tokens = sum(len(data.targets[i]) + 1 for b in batches for i in b)
    cfg = TrainConfig(
        max_tokens=args.max_tokens,
        max_steps=args.steps,
        warmup_steps=max(1, args.steps // 2),
        eval_every=args.steps,
        log_every=args.steps,  # one throughput window: all steps, as the reference is timed
        eval_sentences=4,
        seed=args.seed,
        precision=args.precision,
        deterministic=args.deterministic,
    )
    common.set_threads(args.threads)
    common.reset_peak_memory(args.device)
    before, _ = common.memory_mb(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        _, summary = train(
            common.project_model_config(args, tokenizer.vocab_size),
            cfg,
            data,
            DevSet(sources[:4], sources[:4]),
            tokenizer,
            Path(tmp) / "checkpoint.pt",
            device=args.device,
        )
    _, peak = common.memory_mb(args.device)
    throughput = summary[TIMING]["target_tokens_per_second"]
    seconds = summary["target_tokens"] / throughput
    return {
        "target_tokens_per_second": throughput,
        "target_tokens": summary["target_tokens"],
        "seconds": seconds,
        "flops_per_second": training_flops(args, tokenizer.vocab_size, src_tokens, tgt_tokens)
        / seconds,
        "precision": summary["precision"],
        "peak_mb": peak,
        "training_peak_mb": peak - before,
    }


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
    tokens = src_tokens = 0
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
        src_tokens += int((input_ids != tokenizer.pad_id).sum())
    loss.item()
    common.synchronize(args.device)
    seconds = time.perf_counter() - start
    _, peak = common.memory_mb(args.device)
    return {
        "target_tokens_per_second": tokens / seconds,
        "target_tokens": tokens,
        "seconds": seconds,
        "flops_per_second": training_flops(args, tokenizer.vocab_size, src_tokens, tokens)
        / seconds,
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


def main() -> None:
    args = arguments()
    if args.syncs:
        result = sync_profile(args) | {"machine": common.machine(), "settings": vars(args)}
        path = common.write_result("train_syncs.json", result)
        print(json.dumps(result["per_step"], indent=2))
        print(f"written to {path}")
        return
    if args.side == "project":
        print(json.dumps(project_side(args)))
        return
    if args.side == "reference":
        print(json.dumps(reference_side(args)))
        return
    shape = batching(args)
    argv = sys.argv[1:]
    argv += ["--batch-size", str(shape["reference_batch_size"])]
    rounds = []
    for r in range(args.rounds):
        order = SIDES if r % 2 == 0 else SIDES[::-1]
        result = {side: common.run_side(Path(__file__), side, argv) for side in order}
        rounds.append(result)
        print(
            f"round {r + 1}: project {result['project']['target_tokens_per_second']:.0f} "
            f"reference {result['reference']['target_tokens_per_second']:.0f} target tokens/s; "
            f"peak {result['project']['peak_mb']:.0f} / {result['reference']['peak_mb']:.0f} MB",
            flush=True,
        )
    ratios = {
        "target_tokens_per_second": common.median_ratio(rounds, "target_tokens_per_second"),
        "peak_mb": common.median_ratio(rounds, "peak_mb"),
        "training_peak_mb": common.median_ratio(rounds, "training_peak_mb"),
    }
    result = {
        "benchmark": "train_speed",
        "command": "python benchmarks/train_speed.py " + " ".join(argv[:-2]),
        "machine": common.machine(),
        "settings": {k: v for k, v in vars(args).items() if k != "side"}
        | {"pairs": str(args.pairs)},
        "batching": shape,
        "ratios_project_over_reference": ratios,
        "rounds": rounds,
    }
    for side in SIDES:
        peak = common.gpu_peak_tflops(rounds[0][side]["precision"])
        if peak:
            flops = statistics.median(r[side]["flops_per_second"] for r in rounds)
            result[f"{side}_mfu"] = flops / (peak * 1e12)
    path = common.write_result("train_speed.json", result)
    print(json.dumps({"ratios": ratios, "batching": shape}, indent=2))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
