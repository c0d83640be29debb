"""Decoding throughput: the project's beam search against Hugging Face's `generate`.

    python benchmarks/decode_speed.py [--sentences 400] [--beams 1 4] [--rounds 3] [--threads 1]

Both sides translate the same German sentences (Multi30k), tokenized by one SentencePiece model,
with models of equal dimensions (the project's Transformer and a MarianMTModel, both randomly
initialised with one seed) at the same beam size and the same maximum length: exactly
--max-new-tokens generated tokens per sentence at most (project: max_len_a=0,
max_len_b=--max-new-tokens; reference: max_new_tokens). Untrained models rarely end a
hypothesis early, so both sides decode the full length and do equal work; the generated lengths
are reported to show it. The project side is `regurgitate.decode.translate` (length-sorted
batches of DecodeConfig.max_tokens); the reference is `generate` on batches in input order, as
Hugging Face's translation examples predict, with as many sentences per batch as the project's
batches hold on average. Both include tokenization and detokenization. Measurements alternate
(project, reference, reference, project, ...) in one process; the medians of the per-round
ratios are printed and written to benchmarks/results/decode_speed.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import common


def arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_arguments(parser)
    parser.add_argument("--sentences", type=int, default=400)
    parser.add_argument("--beams", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=6000, help="project batch budget")
    parser.add_argument("--bf16", action="store_true", help="project: bf16 autocast")
    return parser.parse_args(argv)


def project_decoder(args, tokenizer, sentences: list[str], beam: int):
    import torch

    from regurgitate.decode import DecodeConfig, translate
    from regurgitate.model import Transformer

    torch.manual_seed(args.seed)
    config = common.project_model_config(args, tokenizer.vocab_size, dropout=0.0)
    model = Transformer(config).to(args.device).eval()
    cfg = DecodeConfig(
        beam=beam, max_len_a=0.0, max_len_b=args.max_new_tokens, max_tokens=args.max_tokens
    )

    def run() -> list[list[int]]:
        return [h.tokens for _, h in translate(model, tokenizer, sentences, cfg, bf16=args.bf16)]

    return run


def reference_decoder(args, tokenizer, sentences: list[str], beam: int, batch_size: int):
    import torch

    from regurgitate.data import pad

    torch.manual_seed(args.seed)
    model = common.reference_model(args, tokenizer, dropout=0.0).to(args.device).eval()

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
                row = [t for t in row if t != tokenizer.pad_id]
                outputs.append(row[:-1] if row and row[-1] == tokenizer.eos_id else row)
        tokenizer.decode(outputs)
        return outputs

    return run


def project_batch_size(args, tokenizer, sentences: list[str], beam: int) -> float:
    from regurgitate.decode import decode_batches

    lengths = [len(ids) + 1 for ids in tokenizer.encode(sentences)]
    return statistics.mean(len(b) for b in decode_batches(lengths, args.max_tokens, beam))


def timed(run, device: str) -> tuple[float, list[list[int]]]:
    common.synchronize(device)
    start = time.perf_counter()
    outputs = run()
    common.synchronize(device)
    return time.perf_counter() - start, outputs


def main() -> None:
    args = arguments()
    common.set_threads(args.threads)
    tokenizer, sources, _ = common.tokenizer_for(args)
    sentences = sources[-args.sentences :]
    result = {
        "benchmark": "decode_speed",
        "machine": common.machine(),
        "settings": vars(args),
        "beams": {},
    }
    for beam in args.beams:
        batch = project_batch_size(args, tokenizer, sentences, beam)
        runs = {
            "project": project_decoder(args, tokenizer, sentences, beam),
            "reference": reference_decoder(args, tokenizer, sentences, beam, round(batch)),
        }
        for run in runs.values():  # warm-up: first calls allocate and pick kernels
            run()
        rounds = []
        for r in range(args.rounds):
            order = ("project", "reference") if r % 2 == 0 else ("reference", "project")
            measured = {}
            for side in order:
                seconds, outputs = timed(runs[side], args.device)
                measured[side] = {
                    "sentences_per_second": len(sentences) / seconds,
                    "seconds": seconds,
                    "mean_generated_tokens": statistics.mean(len(o) + 1 for o in outputs),
                }
            rounds.append(measured)
            print(
                f"beam {beam} round {r + 1}: project "
                f"{measured['project']['sentences_per_second']:.1f} reference "
                f"{measured['reference']['sentences_per_second']:.1f} sentences/s",
                flush=True,
            )
        result["beams"][str(beam)] = {
            "ratio_sentences_per_second": common.median_ratio(rounds, "sentences_per_second"),
            "project_sentences_per_batch": batch,
            "reference_batch_size": round(batch),
            "rounds": rounds,
        }
    path = common.write_result("decode_speed.json", result)
    ratios = {b: v["ratio_sentences_per_second"] for b, v in result["beams"].items()}
    print(json.dumps({"ratios_project_over_reference_by_beam": ratios}, indent=2))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
