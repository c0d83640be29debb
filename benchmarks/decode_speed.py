"""Decoding throughput: the project's beam search against Hugging Face's `generate`.

    python benchmarks/decode_speed.py [--sentences 500] [--beams 1 4] [--rounds 3] [--threads 1]

Both sides translate the same German sentences (the last --sentences of the Multi30k file),
tokenized by one SentencePiece model, at the same beam size and the same maximum length
(--max-new-tokens generated tokens, EOS included; project: max_len_a=0, max_len_b=that).

--reference pegasus (the default) decodes with the same trained weights on both sides: a project
model trained by the project's trainer for --train-steps (cached under benchmarks/results, or
--model PATH with --tokenizer PATH), and the same weights carried into Hugging Face's
PegasusForConditionalGeneration, the pre-norm member of the Marian/BART family whose layers
compute exactly the project's function (MarianMTModel is post-norm, so it cannot hold them). Both
sides then produce the same translations (their agreement is reported), so the work is equal.
--reference marian instead decodes with untrained models of equal dimensions (the project's and
a MarianMTModel); untrained models seldom end a hypothesis, so both decode to the full length.

The project side is `regurgitate.engine.decode.translate` (length-sorted batches of
DecodeConfig.max_tokens, finished sentences leave the search, the next batch joins it once it has
a batch's worth left); the reference is `generate` on batches in input order, as Hugging Face's
translation examples predict, with as many sentences per batch as the project's batches hold on
average (or --reference-batch-size). Both include tokenization and detokenization.
Measurements alternate (project, reference, reference, project, ...) in one process; each round's
ratio and the load average, and the medians of the ratios, are printed and written to
benchmarks/results/decode_speed_<reference>.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import common


def arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_arguments(parser)
    parser.add_argument("--sentences", type=int, default=500)
    parser.add_argument("--beams", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=6000, help="project batch budget")
    parser.add_argument(
        "--precision", default="auto", help="project: auto (as the workflow), fp32 or bf16"
    )
    parser.add_argument("--reference", choices=("pegasus", "marian"), default="pegasus")
    parser.add_argument(
        "--reference-batch-size",
        type=int,
        help="sentences per `generate` call (default: the project's mean per batch)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="an earlier decode.py (git show REV:src/regurgitate/engine/decode.py > FILE), "
        "timed as a third side in the same rounds",
    )
    # The CPU preset's strong generator trains for 900 steps; a model trained for fewer writes
    # other lengths, and the lead depends on them (BENCHMARKS.md).
    parser.add_argument("--train-steps", type=int, default=900)
    parser.add_argument("--model", type=Path, help="a trained project model (model.pt)")
    parser.add_argument("--tokenizer", type=Path, help="the SentencePiece model of --model")
    parser.add_argument(
        "--syncs", action="store_true", help="count host synchronisations per step instead"
    )
    return parser.parse_args(argv)


def trained_model(args, tokenizer, sources, targets):
    """A project model trained by the project's trainer, cached by its settings."""
    import torch

    from regurgitate.engine.batching import encode_pairs
    from regurgitate.engine.model import load_model, save_model
    from regurgitate.engine.train import DevSet, TrainConfig, train

    settings = [str(args.pairs), args.max_pairs, args.vocab_size, args.d_model, args.heads]
    settings += [args.layers, args.ffn_dim, args.max_positions, args.train_steps, args.seed]
    key = hashlib.sha256(json.dumps(settings).encode()).hexdigest()[:12]
    path = common.RESULTS / "decode_models" / f"{key}.pt"
    if not path.exists():
        print(f"training the project model for {args.train_steps} steps (cached in {path})")
        data = encode_pairs(tokenizer, sources, targets, args.max_positions)
        cfg = TrainConfig(
            max_tokens=2048,
            lr=1e-3,
            warmup_steps=min(200, args.train_steps // 2),
            max_steps=args.train_steps,
            eval_every=args.train_steps,
            eval_sentences=4,
            seed=args.seed,
        )
        config = common.project_model_config(args, tokenizer.vocab_size)
        dev = DevSet(sources[:4], targets[:4])
        with tempfile.TemporaryDirectory() as tmp:
            model, _ = train(config, cfg, data, dev, tokenizer, Path(tmp) / "checkpoint.pt")
        save_model(model, path)
    model, _ = load_model(path, args.device)
    torch.manual_seed(args.seed)
    return model


def models(args):
    """(tokenizer, sentences, project model, reference model)."""
    import torch

    from regurgitate.engine.model import Transformer, load_model
    from regurgitate.engine.tokenizer import Tokenizer

    tokenizer, sources, targets = common.tokenizer_for(args)
    if args.tokenizer:
        tokenizer = Tokenizer(args.tokenizer)
    sentences = sources[-args.sentences :]
    if args.reference == "marian":
        torch.manual_seed(args.seed)
        config = common.project_model_config(args, tokenizer.vocab_size, dropout=0.0)
        project = Transformer(config).to(args.device).eval()
        reference = common.reference_model(args, tokenizer, dropout=0.0)
        return tokenizer, sentences, project, reference.to(args.device).eval()
    if args.model:
        project = load_model(args.model, args.device)[0]
    else:
        # The benchmark's sentences are the last ones: train on the others.
        held_out = len(sources) - args.sentences
        project = trained_model(args, tokenizer, sources[:held_out], targets[:held_out])
    reference = common.pegasus_twin(project.cpu(), tokenizer).to(args.device).eval()
    return tokenizer, sentences, project.to(args.device).eval(), reference


def baseline_module(path: Path):
    """The decoder module in `path`, imported beside the current one (its imports resolve to
    the current package)."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("regurgitate_baseline_decode", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def project_decoder(args, model, tokenizer, sentences: list[str], beam: int, module=None):
    import torch

    from regurgitate.engine import decode
    from regurgitate.engine.device import use_bf16

    module = module or decode
    bf16 = use_bf16(args.precision, torch.device(args.device))
    cfg = module.DecodeConfig(
        beam=beam, max_len_a=0.0, max_len_b=args.max_new_tokens, max_tokens=args.max_tokens
    )

    def run() -> list[list[int]]:
        return [h.tokens for _, h in module.translate(model, tokenizer, sentences, cfg, bf16=bf16)]

    return run


def reference_decoder(args, model, tokenizer, sentences: list[str], beam: int, batch_size: int):
    from regurgitate.engine.batching import pad

    def run() -> list[list[int]]:
        outputs = []
        for start in range(0, len(sentences), batch_size):
            ids = tokenizer.encode(sentences[start : start + batch_size])
            input_ids = pad([i + [tokenizer.eos_id] for i in ids], tokenizer.pad_id)
            input_ids = input_ids.to(args.device)
            generated = model.generate(
                input_ids=input_ids,
                attention_mask=input_ids != tokenizer.pad_id,
                num_beams=beam,
                do_sample=False,
                max_new_tokens=args.max_new_tokens,
                length_penalty=1.0,
            )
            for row in generated[:, 1:].tolist():  # after the decoder start token
                # Rows end at their first EOS; what follows is filler (EOS or padding).
                ends = [i for i, t in enumerate(row) if t in (tokenizer.eos_id, tokenizer.pad_id)]
                outputs.append(row[: ends[0]] if ends else row)
        tokenizer.decode(outputs)
        return outputs

    return run


def project_batch_size(args, tokenizer, sentences: list[str], beam: int) -> float:
    from regurgitate.engine.decode import decode_batches

    lengths = [len(ids) + 1 for ids in tokenizer.encode(sentences)]
    return statistics.mean(len(b) for b in decode_batches(lengths, args.max_tokens, beam))


def timed(run, device: str) -> tuple[float, float, list[list[int]]]:
    """Wall-clock and CPU seconds of `run` (this process's CPU time: on a machine shared with
    other jobs, the wall clock also counts the time the others took the cores)."""
    common.synchronize(device)
    start, cpu = time.perf_counter(), time.process_time()
    outputs = run()
    common.synchronize(device)
    return time.perf_counter() - start, time.process_time() - cpu, outputs


def measure_beam(args, tokenizer, sentences, project, reference, beam: int) -> dict:
    batch = project_batch_size(args, tokenizer, sentences, beam)
    reference_batch = args.reference_batch_size or round(batch)
    runs = {
        "project": project_decoder(args, project, tokenizer, sentences, beam),
        "reference": reference_decoder(
            args, reference, tokenizer, sentences, beam, reference_batch
        ),
    }
    if args.baseline:
        module = baseline_module(args.baseline)
        runs["baseline"] = project_decoder(args, project, tokenizer, sentences, beam, module)
    outputs = {side: run() for side, run in runs.items()}  # warm-up, and what each side says
    sides = list(runs)
    rounds = []
    for r in range(args.rounds):
        # Each side in each place of the order in turn (project, reference; reference, project).
        measured = {}
        for side in sides[r % len(sides) :] + sides[: r % len(sides)]:
            seconds, cpu, _ = timed(runs[side], args.device)
            measured[side] = {
                "sentences_per_second": len(sentences) / seconds,
                "seconds": seconds,
                "sentences_per_cpu_second": len(sentences) / cpu,
                "cpu_seconds": cpu,
            }
        measured["load_average"] = os.getloadavg()[0]
        rounds.append(measured)
        print(
            f"beam {beam} round {r + 1}: "
            + ", ".join(
                f"{side} {measured[side]['sentences_per_second']:.1f} sentences/s "
                f"({measured[side]['cpu_seconds']:.2f} CPU s)"
                for side in sides
            )
            + f"; project / reference {_ratio(measured, 'sentences_per_second'):.2f} "
            f"(CPU time {_ratio(measured, 'sentences_per_cpu_second'):.2f})"
            + (
                f", project / baseline CPU time "
                f"{_ratio(measured, 'sentences_per_cpu_second', 'baseline'):.2f}"
                if args.baseline
                else ""
            )
            + f"; load average {measured['load_average']:.1f}",
            flush=True,
        )
    same = sum(a == b for a, b in zip(outputs["project"], outputs["reference"], strict=True))
    result = {
        "ratio_sentences_per_second": common.median_ratio(rounds, "sentences_per_second"),
        "ratio_sentences_per_cpu_second": common.median_ratio(rounds, "sentences_per_cpu_second"),
        "identical_outputs": same / len(sentences),
        "mean_tokens_with_eos": {
            side: statistics.mean(len(o) + 1 for o in out) for side, out in outputs.items()
        },
        "project_sentences_per_batch": batch,
        "reference_batch_size": reference_batch,
        "rounds": rounds,
    }
    if args.baseline:
        for key in ("sentences_per_second", "sentences_per_cpu_second"):
            result[f"baseline_over_reference_{key}"] = statistics.median(
                _ratio(m, key, "reference", "baseline") for m in rounds
            )
            result[f"project_over_baseline_{key}"] = statistics.median(
                _ratio(m, key, "baseline") for m in rounds
            )
        result["identical_to_baseline"] = statistics.mean(
            a == b for a, b in zip(outputs["project"], outputs["baseline"], strict=True)
        )
    return result


def _ratio(measured: dict, key: str, under: str = "reference", over: str = "project") -> float:
    return measured[over][key] / measured[under][key]


def sync_profile(args, tokenizer, sentences, project) -> dict:
    """Host-synchronising operators of the project's beam search, counted by torch.profiler:
    per decoder step (decode.STEP_LABEL, one per step of all sentences searched) and per
    sentence, by beam size."""
    from torch.profiler import ProfilerActivity, profile

    from regurgitate.engine.decode import STEP_LABEL

    result = {}
    for beam in args.beams:
        run = project_decoder(args, project, tokenizer, sentences, beam)
        with (
            profile(activities=[ProfilerActivity.CPU]) as profiler,
            common.counting_tolist() as calls,
        ):
            run()
        events = profiler.events()
        counts = common.host_sync_counts(events, len(calls))
        steps = sum(e.name == STEP_LABEL for e in events)
        result[str(beam)] = {
            "decoder_steps": steps,
            "per_step": {name: count / steps for name, count in counts.items()},
            "per_sentence": {name: count / len(sentences) for name, count in counts.items()},
        }
    return result


def main() -> None:
    args = arguments()
    common.set_threads(args.threads)
    tokenizer, sentences, project, reference = models(args)
    if args.syncs:
        result = {"machine": common.machine(), "settings": vars(args)}
        result["beams"] = sync_profile(args, tokenizer, sentences, project)
        path = common.write_result("decode_syncs.json", result)
        print(json.dumps(result["beams"], indent=2))
        print(f"written to {path}")
        return
    import torch

    from regurgitate.engine.device import use_bf16

    bf16 = use_bf16(args.precision, torch.device(args.device))
    result = {
        "benchmark": "decode_speed",
        "machine": common.machine(),
        "settings": vars(args),
        "project_precision": "bf16" if bf16 else "fp32",
        "parameters": {
            "project": sum(p.numel() for p in project.parameters()),
            "reference": sum(p.numel() for p in reference.parameters()),
        },
        "beams": {},
    }
    for beam in args.beams:
        result["beams"][str(beam)] = measure_beam(
            args, tokenizer, sentences, project, reference, beam
        )
    path = common.write_result(f"decode_speed_{args.reference}.json", result)
    summary = {
        beam: {
            k: v[k]
            for k in (
                "ratio_sentences_per_second",
                "ratio_sentences_per_cpu_second",
                "identical_outputs",
                "project_over_baseline_sentences_per_cpu_second",
                "baseline_over_reference_sentences_per_cpu_second",
                "identical_to_baseline",
            )
            if k in v
        }
        for beam, v in result["beams"].items()
    }
    print(json.dumps({"project_over_reference_by_beam": summary}, indent=2))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
