"""Peak memory and time of corpus preparation on a Europarl-sized corpus that this script makes.

    python benchmarks/corpus_memory.py [--pairs 1920000] [--format europarl|tsv] [--keep DIR]

Writes a synthetic German-English corpus with as many pairs as Europarl v7 de-en (about 1.92
million; sentence lengths drawn around Europarl's ~25 words, a share of them long enough for the
cleaning rules to drop) into a temporary directory, as the release's .tgz with
training/europarl-v7.de-en.{de,en} members or as a TSV, then runs the real preparation
(`regurgitate.study.corpus.prepare`, with config/paper.yaml's cleaning rules and pool sizes) in
a fresh interpreter and reports its peak resident set size (VmHWM) and wall time. The limit is 2
GB. Writes benchmarks/results/corpus_memory.json."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import common
import numpy as np
import yaml

LIMIT_MB = 2000
MEMBERS = {"de": "training/europarl-v7.de-en.de", "en": "training/europarl-v7.de-en.en"}
CORPUS_FILES = {"tsv": "corpus.tsv", "europarl": "training-parallel-europarl-v7.tgz"}

CHILD = """
import json, sys
from pathlib import Path
from regurgitate.study.corpus import CleaningConfig, prepare
spec = json.loads(sys.argv[1])
report = prepare(
    spec["corpus"],
    CleaningConfig(**spec["cleaning"]),
    spec["sizes"],
    spec["seed"],
    Path(spec["out_dir"]),
    Path(spec["out_dir"]) / "report.json",
    archive=Path(spec["archive"]) if spec["archive"] else None,
)
status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
print(json.dumps({"peak_mb": int(status["VmHWM"].split()[0]) / 1024, "report": report}))
"""


def vocabulary(rng: np.random.Generator, size: int, letters: str) -> np.ndarray:
    lengths = rng.integers(2, 12, size)
    chars = np.array(list(letters))
    words = ["".join(rng.choice(chars, n)) for n in lengths]
    # Typographic quotes, dashes and the euro sign (outside Latin-1) occur in about a fifth of
    # Europarl's sentences; Python stores such a sentence with two bytes per character.
    for i in rng.choice(size, size // 100, replace=False):
        words[i] = f"„{words[i]}“" if i % 2 else f"{words[i]} –"
    return np.array(words)


def sentences(rng: np.random.Generator, vocab: np.ndarray, lengths: np.ndarray):
    """Sentences of the given word counts, in chunks, so the corpus never sits in memory."""
    chunk = 50_000
    for start in range(0, len(lengths), chunk):
        counts = lengths[start : start + chunk]
        words = vocab[rng.integers(0, len(vocab), int(counts.sum()))]
        ends = np.cumsum(counts)
        yield from (" ".join(words[e - n : e]) for n, e in zip(counts, ends, strict=True))


def write_corpus(
    directory: Path, pairs: int, fmt: str, seed: int, reuse: bool = False
) -> tuple[Path, dict]:
    """The corpus file and its `corpus` config; with `reuse`, one already there is kept."""
    path = directory / CORPUS_FILES[fmt]
    if fmt == "tsv":
        corpus = {"format": "tsv", "tsv": str(path)}
    else:
        corpus = {"format": "europarl", "de_member": MEMBERS["de"], "en_member": MEMBERS["en"]}
    if reuse and path.exists():
        return path, corpus
    rng = np.random.default_rng(seed)
    de_vocab = vocabulary(rng, 40_000, "abcdefghijklmnopqrstuvwxyzäöüß")
    en_vocab = vocabulary(rng, 30_000, "abcdefghijklmnopqrstuvwxyz")
    # Europarl sentences average about 25 words with a long tail; about 1% exceed 80 words.
    de_lengths = np.clip(rng.lognormal(3.0, 0.65, pairs).astype(int), 1, 200)
    en_lengths = np.clip((de_lengths * rng.uniform(0.8, 1.3, pairs)).astype(int), 1, 200)
    de_lines = sentences(rng, de_vocab, de_lengths)
    en_lines = sentences(rng, en_vocab, en_lengths)
    if fmt == "tsv":
        with path.open("w", encoding="utf-8") as out:
            for de, en in zip(de_lines, en_lines, strict=True):
                out.write(f"{de}\t{en}\n")
        return path, corpus
    plain = {}
    for side, lines in (("de", de_lines), ("en", en_lines)):
        plain[side] = directory / f"europarl-v7.de-en.{side}"
        with plain[side].open("w", encoding="utf-8") as out:
            out.writelines(line + "\n" for line in lines)
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for side, member in MEMBERS.items():
            tar.add(plain[side], arcname=member)
            plain[side].unlink()
    return path, corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1_920_000, help="fewer: pools scaled down")
    parser.add_argument("--format", choices=("europarl", "tsv"), default="europarl")
    parser.add_argument("--config", type=Path, default=common.REPO / "config" / "paper.yaml")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--keep", type=Path, help="write the corpus here and keep it; reuse one found there"
    )
    args = parser.parse_args()
    config = yaml.safe_load(args.config.read_text())
    sizes = config["pools"]
    if sum(v or 0 for v in sizes.values()) > 0.5 * args.pairs:  # a trial run on fewer pairs
        sizes = {
            k: None if k == "teacher" else v * args.pairs // 2_000_000 for k, v in sizes.items()
        }
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.keep or Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        reused = bool(args.keep) and (directory / CORPUS_FILES[args.format]).exists()
        path, corpus = write_corpus(directory, args.pairs, args.format, args.seed, args.keep)
        generated = None if reused else time.perf_counter() - start
        spec = {
            "corpus": corpus | {"test_tsv": None},
            "cleaning": config["cleaning"],
            "sizes": sizes,
            "seed": args.seed,
            "out_dir": str(Path(tmp) / "pools"),
            "archive": str(path) if args.format == "europarl" else None,
        }
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", CHILD, json.dumps(spec)],
            capture_output=True,
            text=True,
            env=common.child_environment(),
        )
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            sys.stderr.write(done.stderr)
            raise SystemExit(f"preparation failed with exit code {done.returncode}")
        child = json.loads(done.stdout.strip().splitlines()[-1])
        result = {
            "benchmark": "corpus_memory",
            "machine": common.machine(),
            "pairs_written": args.pairs,
            "format": args.format,
            "corpus_bytes": path.stat().st_size,
            "generation_seconds": generated,
            "prepare_seconds": seconds,
            "prepare_peak_mb": child["peak_mb"],
            "limit_mb": LIMIT_MB,
            "within_limit": child["peak_mb"] < LIMIT_MB,
            "report": child["report"],
        }
    out = common.write_result(f"corpus_memory_{args.format}.json", result)
    print(json.dumps({k: v for k, v in result.items() if k not in ("machine", "report")}, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
