"""Check the default study's training budgets on a corpus of short sentences.

    python benchmarks/plateau_check.py [--workdir DIR] [--max-words 10] [--seeds 1 2 3]

The budgets of config/config.yaml are steps of `max_tokens` target tokens with patience on the
dev score, so that models train to their plateau whatever the corpus's sentence lengths. This
check makes a second corpus from the development copy of Multi30k (../shared/data/multi30k):
only the pairs of at most --max-words words on both sides (about 8.4 English words a sentence at
10, against Multi30k's 11.9), train and val as the training corpus, the four test sets' short
pairs as the test set. It runs the default study's generators and E2 on it with the preset's
training settings unchanged; the pools and the ladder's teacher pairs shrink to what the smaller
corpus holds (weak keeps its 2,000 pairs and tiny architecture, the lowest rung). It then
reports each generator's test BLEU, whether it learned (`generator_learned`) and what ended its
training, and the share of E2's students that patience stopped. Writes `summary.json` in DIR.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED_MULTI30K = REPO.parent / "shared" / "data" / "multi30k"
TRAIN_FILES = ["train.tsv", "val.tsv"]
TEST_FILES = [
    "test_2016_flickr.tsv",
    "test_2017_flickr.tsv",
    "test_2018_flickr.tsv",
    "test_2017_mscoco.tsv",
]
# What the short corpus holds (about 11,000 training pairs at 10 words) instead of the preset's
# pools and rungs, made for Multi30k's 30,000.
POOLS = {"dev": 500, "detector": 500, "student": 4000}
TEACHER_PAIRS = {"weak": 2000, "fair": 3000, "good": 4500, "strong": None}
SIZES = [2000, 4000]


def write_unless_same(path: Path, text: str) -> None:
    """Write `text` unless `path` holds it already: a rewritten corpus or config would be newer
    than every result made from it, and Snakemake would make them all again on a resumed check."""
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def short_pairs(files: list[Path], max_words: int) -> list[str]:
    lines = []
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            german, english = line.split("\t")
            if len(german.split()) <= max_words and len(english.split()) <= max_words:
                lines.append(line)
    return lines


def write_corpus(source: Path, out: Path, max_words: int) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, files in (("train", TRAIN_FILES), ("test", TEST_FILES)):
        lines = short_pairs([source / f for f in files], max_words)
        write_unless_same(out / f"{name}.tsv", "\n".join(lines) + "\n")
        words = [len(line.split("\t")[1].split()) for line in lines]
        counts[name] = {"pairs": len(lines), "english_words_mean": sum(words) / len(words)}
    return counts


def check_config(corpus: Path, seeds: list[int]) -> dict:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["corpus"].update(
        format="tsv", tsv=str(corpus / "train.tsv"), test_tsv=str(corpus / "test.tsv")
    )
    config["pools"].update(POOLS)
    for name, pairs in TEACHER_PAIRS.items():
        config["generators"][name]["teacher_pairs"] = pairs
    config["scratch"].update(sizes=SIZES, seeds=seeds)
    config["finetune"]["sizes"] = SIZES  # not run here, but checked against the pools
    return config


TRAINING_END = ("stopped_by", "steps", "epochs_completed", "best_step")


def training_end(path: Path) -> dict:
    """How a model's training ended; unknown (None) where its record is gone, as after a
    retraining that was killed once the model's scores and synthetic data had been made."""
    if not path.exists():
        return dict.fromkeys(TRAINING_END)
    train = json.loads(path.read_text())
    return {k: train.get(k) for k in TRAINING_END}


def summarise(results: Path) -> dict:
    generators = pl.read_csv(results / "tables" / "generators.csv")
    rows = [
        row | training_end(results / "generators" / row["generator"] / "train.json")
        for row in generators.select(
            "generator", "architecture", "teacher_pairs", "bleu", "generator_learned"
        ).iter_rows(named=True)
    ]
    runs = (results / "runs" / "scratch").rglob("metrics.json")
    students = [json.loads(path.read_text())["train"] for path in runs]
    stops = [str(train.get("stopped_by")) for train in students]
    summary = {
        "generators": rows,
        "generators_learned_share": sum(bool(r["generator_learned"]) for r in rows) / len(rows),
        "students": len(students),
        "students_stopped_by": {reason: stops.count(reason) for reason in sorted(set(stops))},
        "students_patience_share": stops.count("patience") / len(stops) if stops else None,
    }
    table = results / "tables" / "scratch.csv"
    if table.exists():
        summary["scratch"] = (
            pl.read_csv(table)
            .select("condition", "size", "bleu_mean", "seed_sd", "n_seeds")
            .to_dicts()
        )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=REPO / "benchmarks/results/plateau_check")
    parser.add_argument("--max-words", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--summarise-only", action="store_true")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    if not args.summarise_only:
        corpus = write_corpus(SHARED_MULTI30K, args.workdir / "corpus", args.max_words)
        configfile = args.workdir / "config.yaml"
        config = check_config(args.workdir / "corpus", args.seeds)
        write_unless_same(configfile, yaml.safe_dump(config))
        command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "workflow" / "Snakefile")]
        command += ["--configfile", str(configfile), "--cores", str(args.cores), "--keep-going"]
        command += ["results/tables/generators.csv", "results/tables/scratch.csv"]
        subprocess.run(command, cwd=args.workdir, check=True)
        (args.workdir / "corpus.json").write_text(json.dumps(corpus, indent=2) + "\n")
    summary = {"corpus": json.loads((args.workdir / "corpus.json").read_text())}
    summary |= summarise(args.workdir / "results")
    (args.workdir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
