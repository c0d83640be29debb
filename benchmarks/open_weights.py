"""The open-weight arm against the plain way a researcher would do it with the same libraries, side
by side in one run on the same model and data:

- fine-tuning: the project's loop (generators/open_weights_finetune.py: token-budget steps,
  answer-only loss, LoRA through peft) against TRL's SFTTrainer (completion-only loss, the same
  LoRA, the same pairs, epochs and learning rate), in target tokens a second;
- generation: the project's length-sorted batches (generators/open_weights.py) against
  `model.generate` over fixed-size batches in input order, padded to the batch's longest prompt,
  in sentences a second.

A 4-layer Llama (hidden 256) with a byte-level BPE tokenizer and a chat template, random weights,
on Multi30k pairs where `../shared/data` has them (else the toy corpus). Run:

    PYTHONPATH=src:tests python benchmarks/open_weights.py [--pairs 256] [--threads 2] [--rounds 3]

It needs the `llm` extra and trl (`pip install "torch==2.13.0" trl`); it prints a Markdown table.
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import tiny_hf  # noqa: E402
import torch  # noqa: E402

from regurgitate.engine.train import TrainConfig  # noqa: E402
from regurgitate.generators.open_weights import (  # noqa: E402
    OpenWeightsGenerator,
    chat_text,
    encode_sources,
)
from regurgitate.generators.open_weights_finetune import FinetuneSettings, finetune  # noqa: E402
from regurgitate.generators.open_weights_settings import OpenWeightsSettings  # noqa: E402

MULTI30K = ROOT.parent / "shared" / "data" / "multi30k"
LORA = {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}


def read_pairs(n: int) -> list[tuple[str, str]]:
    de, en = MULTI30K / "train.de.gz", MULTI30K / "train.en.gz"
    if de.exists() and en.exists():
        with gzip.open(de, "rt") as d, gzip.open(en, "rt") as e:
            pairs = [(a.strip(), b.strip()) for a, b, _ in zip(d, e, range(n), strict=False)]
        return pairs
    from toy import toy_pair

    rng = random.Random(0)
    return [toy_pair(rng) for _ in range(n)]


def settings(path: Path, batch: int) -> OpenWeightsSettings:
    generator = {"backend": "huggingface", "model": str(path), "prompt": "short",
                 "decoding": {"max_new_tokens": 48, "batch_size": batch}}  # fmt: skip
    return OpenWeightsSettings.from_config("bench", generator, tiny_hf.SHORT_PROMPT)


def ours_finetune(path, pairs, epochs, lr, budget, work) -> tuple[float, int]:
    training = TrainConfig(
        max_tokens=budget, lr=lr, warmup_steps=1, max_steps=10**6, max_epochs=epochs,
        eval_every=10**6, log_every=10**6, select="last", precision="fp32", label_smoothing=0.0,
    )  # fmt: skip
    ft = FinetuneSettings.from_config(vars(training), {"method": "lora", "lora": LORA})
    sources, targets = [s for s, _ in pairs], [t for _, t in pairs]
    start = time.perf_counter()
    summary = finetune(
        settings(path, 32), ft, sources, targets, ([], []), work / "ours.pt", work / "ours",
        torch.device("cpu"),
    )  # fmt: skip
    return time.perf_counter() - start, summary["target_tokens"]


def trl_finetune(path, pairs, epochs, lr, batch, work) -> tuple[float, int]:
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(path)
    prompt = tiny_hf.SHORT_PROMPT["short"][1]
    rows = [
        {"prompt": [{"role": "system", "content": prompt["system"]},
                    {"role": "user", "content": s}],
         "completion": [{"role": "assistant", "content": t}]}
        for s, t in pairs
    ]  # fmt: skip
    start = time.perf_counter()  # as for the project: loading and data preparation count
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    config = SFTConfig(
        output_dir=str(work / "trl"), num_train_epochs=epochs, learning_rate=lr,
        per_device_train_batch_size=batch, lr_scheduler_type="constant", report_to=[],
        save_strategy="no", logging_strategy="no", use_cpu=True, bf16=False,
        completion_only_loss=True, dataloader_num_workers=0, seed=1,
    )  # fmt: skip
    peft = LoraConfig(task_type="CAUSAL_LM", r=LORA["r"], lora_alpha=LORA["alpha"],
                      lora_dropout=0.0, target_modules=LORA["target_modules"])  # fmt: skip
    trainer = SFTTrainer(
        model=model, args=config, train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer, peft_config=peft,
    )  # fmt: skip
    trainer.train()
    trainer.save_model(str(work / "trl-adapter"))  # the project writes its adapter too
    seconds = time.perf_counter() - start
    tokens = sum(len(tokenizer(t + "<|im_end|>\n")["input_ids"]) for _, t in pairs) * epochs
    return seconds, tokens


def ours_generate(path, sources, batch) -> float:
    generator = OpenWeightsGenerator(settings(path, batch), torch.device("cpu"), progress=False)
    start = time.perf_counter()
    generator.translate(sources)
    return time.perf_counter() - start


@torch.inference_mode()
def plain_generate(path, sources, batch) -> float:
    """model.generate over batches in input order, padded to each batch's longest prompt."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    prompt = settings(path, batch).prompt
    texts = [chat_text(tokenizer, prompt, s) for s in sources]
    start = time.perf_counter()
    for i in range(0, len(texts), batch):
        inputs = tokenizer(texts[i : i + batch], return_tensors="pt", padding=True,
                           add_special_tokens=False)  # fmt: skip
        out = model.generate(**inputs, max_new_tokens=48, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)  # fmt: skip
        tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pairs = read_pairs(args.pairs)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        path = tiny_hf.build_causal(work / "model", hidden=256, layers=4)
        # one step of TRL's batch of 16 pairs holds about as many target tokens as ours
        loaded = OpenWeightsGenerator(settings(path, 16), torch.device("cpu"), progress=False)
        per_pair = sum(len(loaded.loaded.tokenizer(t)["input_ids"]) + 2 for _, t in pairs)
        budget = 16 * per_pair // len(pairs)
        lengths = [len(x) for x in encode_sources(loaded.loaded, [s for s, _ in pairs])]
        sources = [s for s, _ in pairs]
        # Alternating rounds, medians: a shared machine's load changes between runs.
        rates = {"ours": [], "trl": [], "ours_g": [], "plain_g": []}
        for r in range(args.rounds):
            for side in ("o", "t"):  # a fresh folder each: a checkpoint left there would resume
                (work / f"{side}{r}").mkdir()
            seconds, tokens = ours_finetune(path, pairs, args.epochs, 1e-3, budget, work / f"o{r}")
            rates["ours"].append(tokens / seconds)
            seconds, tokens = trl_finetune(path, pairs, args.epochs, 1e-3, 16, work / f"t{r}")
            rates["trl"].append(tokens / seconds)
            rates["ours_g"].append(len(pairs) / ours_generate(path, sources, 32))
            rates["plain_g"].append(len(pairs) / plain_generate(path, sources, 32))
    n = len(pairs)
    print(f"{n} pairs, prompts of {min(lengths)}-{max(lengths)} tokens, {args.threads} threads")
    print("| what | project | plain way | project / plain (speed) |")
    print("|---|---|---|---|")
    ours, trl = statistics.median(rates["ours"]), statistics.median(rates["trl"])
    ours_g, plain_g = statistics.median(rates["ours_g"]), statistics.median(rates["plain_g"])
    ratios = [a / b for a, b in zip(rates["ours"], rates["trl"], strict=True)]
    print(f"| LoRA fine-tuning, target tokens/s | {ours:.0f} | {trl:.0f} (TRL SFTTrainer) | "
          f"{ours / trl:.2f} (rounds {min(ratios):.2f} to {max(ratios):.2f}) |")  # fmt: skip
    ratios = [a / b for a, b in zip(rates["ours_g"], rates["plain_g"], strict=True)]
    print(f"| greedy generation, sentences/s | {ours_g:.1f} | {plain_g:.1f} (model.generate, "
          f"batches in input order) | {ours_g / plain_g:.2f} (rounds {min(ratios):.2f} to "
          f"{max(ratios):.2f}) |")  # fmt: skip


if __name__ == "__main__":
    main()
