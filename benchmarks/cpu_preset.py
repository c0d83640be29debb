"""Run the CPU preset end to end and report what the E2 issue asks to quote.

    python benchmarks/cpu_preset.py [--workdir DIR] [--cores 2] [--configfile config/cpu.yaml]

Runs the whole DAG from scratch in DIR (default: a fresh `benchmarks/results/cpu_preset`),
measures its wall time, then summarises: BLEU per condition at the largest size, each
generator's own BLEU, the students' training throughput (target tokens/s) and the time each
rule took (from Snakemake's benchmark files). Writes `summary.json` into DIR and prints it.
With --summarise-only it reads a finished run instead of starting one.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[1]


def run_workflow(workdir: Path, configfile: Path, cores: int) -> float:
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "--configfile",
        str(configfile),
        "--cores",
        str(cores),
    ]
    start = time.perf_counter()
    subprocess.run(command, cwd=workdir, check=True)
    return time.perf_counter() - start


def rule_times(workdir: Path) -> dict[str, float]:
    """Seconds per rule, summed over its jobs' benchmark files."""
    totals: dict[str, float] = {}
    for path in (workdir / "benchmarks" / "results").rglob("*.tsv"):
        rule = path.relative_to(workdir / "benchmarks" / "results").parts[0]
        totals[rule] = totals.get(rule, 0.0) + float(pl.read_csv(path, separator="\t")["s"][0])
    return dict(sorted(totals.items(), key=lambda item: -item[1]))


def summarise(workdir: Path) -> dict:
    results = workdir / "results"
    table = pl.read_csv(results / "tables" / "scratch.csv")
    largest = table.filter(pl.col("size") == table["size"].max())
    students = [json.loads(p.read_text()) for p in (results / "runs").rglob("train.json")]
    throughput = [s["target_tokens_per_second"] for s in students if s["target_tokens_per_second"]]
    return {
        "largest_size": int(table["size"].max()),
        "bleu_at_largest_size": {
            row["condition"]: {
                k: row[k]
                for k in ("bleu_mean", "bleu_ci_low", "bleu_ci_high", "chrf_mean", "n_seeds")
            }
            for row in largest.iter_rows(named=True)
        },
        "generators": pl.read_csv(results / "tables" / "generators.csv")
        .select("generator", "architecture", "teacher_pairs", "bleu", "chrf")
        .to_dicts(),
        "student_target_tokens_per_second": {
            "mean": sum(throughput) / len(throughput),
            "min": min(throughput),
            "max": max(throughput),
            "runs": len(throughput),
        },
        "rule_seconds": rule_times(workdir),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=REPO / "benchmarks/results/cpu_preset")
    parser.add_argument("--configfile", type=Path, default=REPO / "config" / "cpu.yaml")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--summarise-only", action="store_true")
    args = parser.parse_args()
    summary = {}
    if not args.summarise_only:
        shutil.rmtree(args.workdir, ignore_errors=True)
        args.workdir.mkdir(parents=True)
        # The preset's corpus paths are relative to the repository root.
        (args.workdir / "config").mkdir()
        config = args.configfile.read_text().replace("../shared/", f"{REPO.parent}/shared/")
        configfile = args.workdir / "config" / args.configfile.name
        configfile.write_text(config)
        summary["wall_seconds"] = run_workflow(args.workdir, configfile, args.cores)
    summary.update(summarise(args.workdir))
    if not args.summarise_only:
        (args.workdir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
