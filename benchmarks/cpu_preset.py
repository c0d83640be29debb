"""Run the CPU preset end to end and report what the study's issues ask to quote.

    python benchmarks/cpu_preset.py [--workdir DIR] [--cores 2] [--configfile config/config.yaml]

Runs the whole DAG from scratch in DIR (default: a fresh `benchmarks/results/cpu_preset`),
measures its wall time, then summarises: per experiment, every condition at the largest size
(BLEU with its interval over seeds, the paired difference to `real` with its interval and
p-values) and what ended its students' training (the early-stopped share); the human pairs each
full synthetic set is worth; each mitigation's share of the gap closed; each generator's own
BLEU; the students' training throughput (target tokens/s); and per rule the jobs, their total
and mean seconds (from Snakemake's log), the overhead outside each job's own log (start-up) and
peak resident memory (from Snakemake's benchmark files), as JSON and as Markdown tables per rule
and per stage (training, decoding, scoring, other), with the end-to-end wall time and how busy
the cores were. Writes `summary.json` into DIR and prints it.
With --summarise-only it reads a finished run instead of starting one (and takes the wall time
from that run's summary.json, or where it has none, sums the spans of its Snakemake runs from
their logs); with --resume it goes on with an unfinished run in DIR (the wall time is then the
sum of its parts' spans, as --summarise-only counts them). Beside a development checkout it reads
Multi30k from ../shared/data/multi30k, as development and CI do, instead of downloading it
(--download does).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import polars as pl
import yaml

from regurgitate.study import footprint

REPO = Path(__file__).resolve().parents[1]
# The line regurgitate.engine.train logs at the end of a training run.
THROUGHPUT = re.compile(r"trained at (\d+) target tokens/s")
SHARED_MULTI30K = REPO.parent / "shared" / "data" / "multi30k"


def run_workflow(
    workdir: Path, configfile: Path, cores: int, unlock: bool = False, prioritize=()
) -> float:
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "workflow" / "Snakefile"),
        "--configfile",
        str(configfile),
        "--cores",
        str(cores),
    ]
    if unlock:  # a part that was killed (a session's end) leaves the folder locked
        subprocess.run([*command, "--unlock"], cwd=workdir, check=True)
    start = time.perf_counter()
    prioritized = ["--prioritize", *prioritize] if prioritize else []
    subprocess.run([*command, *prioritized], cwd=workdir, check=True)
    return time.perf_counter() - start


# Where a rule's time goes, for the table's stage totals; every other rule counts as "other"
# (curricula, pools, tables, figures: mostly process start-up).
STAGES = {
    "training": ("train_",),
    "decoding": ("generate_", "translate_", "evaluate_", "back_translate", "reverse_synthetic"),
    "scoring": (
        "quality_scores",
        "pair_nll",
        "detector_scores",
        "mechanisms",
        "mixed_mech",
        "measures_",
    ),
}
# A job log's timestamp, as regurgitate.jobs.log writes it, and the lines of Snakemake's own log
# that start and end a job.
LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")
SNAKEMAKE_TIME = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
SNAKEMAKE_RULE = re.compile(r"^(?:local)?rule (\w+):$")
SNAKEMAKE_FIELD = re.compile(r"^ +(log|jobid): (\S+?),?$")
SNAKEMAKE_FINISHED = re.compile(r"^Finished jobid: (\d+) ")
STARTUP_CPU = re.compile(r"job started \(process \d+, ([\d.]+) s of CPU to start\)")


def stage(rule: str) -> str:
    return next((s for s, starts in STAGES.items() if rule.startswith(starts)), "other")


def logged_seconds(log: Path) -> tuple[float | None, float | None]:
    """Seconds from a job's last "job started" line (its imports done) to its last log line, and
    the CPU seconds it took to start (as the job logs it)."""
    if not log.exists():
        return None, None
    stamped = [(m[1], line) for line in log.read_text().splitlines() if (m := LOG_TIME.match(line))]
    started = [(stamp, line) for stamp, line in stamped if "job started" in line]
    if not started:
        return None, None
    first, last = (
        datetime.strptime(s, "%Y-%m-%d %H:%M:%S,%f") for s in (started[-1][0], stamped[-1][0])
    )
    cpu = STARTUP_CPU.search(started[-1][1])
    return (last - first).total_seconds(), float(cpu[1]) if cpu else None


def snakemake_logs(workdir: Path) -> list[Path]:
    return sorted((workdir / ".snakemake" / "log").glob("*.snakemake.log"))


def snakemake_time(match: re.Match) -> datetime:
    return datetime.strptime(" ".join(match[1].split()), "%a %b %d %H:%M:%S %Y")


def snakemake_stamps(log: Path) -> list[datetime]:
    lines = log.read_text().splitlines()
    return [snakemake_time(m) for line in lines if (m := SNAKEMAKE_TIME.match(line))]


def run_spans(workdir: Path) -> list[float]:
    """The seconds of each Snakemake run in `workdir` from its log: its first job start to its
    last event (so an interrupted and resumed study counts without the pause between, and each
    run's DAG building before its first job is left out). Logs without a job are no run."""
    spans = [
        stamps[-1] - stamps[0]
        for log in snakemake_logs(workdir)
        if (stamps := snakemake_stamps(log))
    ]
    return [span.total_seconds() for span in spans]


def snakemake_jobs(workdir: Path) -> list[dict]:
    """Every finished job of the Snakemake runs in `workdir`, from Snakemake's logs: its rule,
    its log file and its seconds from start to finish (timestamps to the second)."""
    jobs = []
    for path in snakemake_logs(workdir):
        started, stamp, job = {}, None, None
        for line in path.read_text().splitlines():
            if m := SNAKEMAKE_TIME.match(line):
                stamp = snakemake_time(m)
            elif m := SNAKEMAKE_RULE.match(line):
                job = {"rule": m[1], "start": stamp, "log": None}
            elif job is not None and (m := SNAKEMAKE_FIELD.match(line)):
                if m[1] == "log":
                    job["log"] = m[2]
                else:
                    started[m[2]], job = job, None
            elif (m := SNAKEMAKE_FINISHED.match(line)) and m[1] in started:
                done = started.pop(m[1])
                jobs.append({**done, "seconds": (stamp - done["start"]).total_seconds()})
    return jobs


def rule_table(workdir: Path) -> list[dict]:
    """Per rule: jobs, summed and mean seconds (Snakemake's log), the overhead, and peak RSS
    (Snakemake's benchmark files, where the rule has them). The overhead is a job's seconds
    outside the span of its own log: interpreter start-up, imports, Snakemake's script preamble,
    writing outputs after the last log line, and Snakemake's own bookkeeping."""
    rows = []
    for job in snakemake_jobs(workdir):
        logged, startup = logged_seconds(workdir / job["log"]) if job["log"] else (None, None)
        overhead = None if logged is None else max(0.0, job["seconds"] - logged)
        rows.append((job["rule"], job["seconds"], overhead, startup))
    if not rows:
        return []
    root = workdir / "benchmarks" / "results"
    rss = [
        {"rule": Path(path.relative_to(root).parts[0]).stem, "rss": rss}
        for path in root.rglob("*.tsv")
        for rss in pl.read_csv(path, separator="\t")["max_rss"].cast(pl.Float64, strict=False)
    ]
    peaks = pl.DataFrame(rss, schema={"rule": pl.String, "rss": pl.Float64})
    table = (
        pl.DataFrame(
            rows,
            schema={"rule": pl.String}
            | dict.fromkeys(["seconds", "overhead", "startup"], pl.Float64),
            orient="row",
        )
        .group_by("rule")
        .agg(
            jobs=pl.len(),
            total_s=pl.col("seconds").sum(),
            mean_s=pl.col("seconds").mean(),
            overhead_s=pl.col("overhead").sum(),
            # null where no job logged it (logs written before the job log gave it)
            startup_cpu_s=pl.when(pl.col("startup").count() > 0).then(pl.col("startup").sum()),
        )
        .join(peaks.group_by("rule").agg(max_rss_mb=pl.col("rss").max()), on="rule", how="left")
        .with_columns(stage=pl.col("rule").map_elements(stage, return_dtype=pl.String))
        .sort("total_s", descending=True)
    )
    return table.to_dicts()


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}"


def markdown_table(rules: list[dict], wall_seconds: float | None, cores: int | None) -> str:
    lines = [
        "| rule | stage | jobs | total s | mean s | overhead s | start-up CPU s | max RSS MB |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rules:
        lines.append(
            f"| {r['rule']} | {r['stage']} | {r['jobs']} | {r['total_s']:.0f} "
            f"| {r['mean_s']:.1f} | {r['overhead_s']:.0f} | {_number(r['startup_cpu_s'])} "
            f"| {_number(r['max_rss_mb'])} |"
        )
    total, overhead = (sum(r[k] for r in rules) for k in ("total_s", "overhead_s"))
    jobs = sum(r["jobs"] for r in rules)
    startup = [r["startup_cpu_s"] for r in rules if r["startup_cpu_s"] is not None]
    startup = _number(sum(startup) if startup else None)
    lines.append(f"| all jobs | | {jobs} | {total:.0f} | | {overhead:.0f} | {startup} | |")
    lines += [
        "",
        "| stage | jobs | total s | share | overhead s |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name in [*STAGES, "other"]:
        part = [r for r in rules if r["stage"] == name]
        seconds = sum(r["total_s"] for r in part)
        lines.append(
            f"| {name} | {sum(r['jobs'] for r in part)} | {seconds:.0f} | {seconds / total:.0%} "
            f"| {sum(r['overhead_s'] for r in part):.0f} |"
        )
    if wall_seconds is not None:
        lines.append(f"\nEnd-to-end wall time: {wall_seconds:.0f} s ({wall_seconds / 60:.1f} min)")
        if cores:  # how full the scheduler kept the cores (each job holds one)
            lines.append(f"Cores busy: {total / (cores * wall_seconds):.0%} of {cores}")
    return "\n".join(lines)


def footprint_table(rows: list[dict]) -> str:
    lines = [
        "\n| rule | jobs | footprint expected s | measured s (jobs) | measured / expected |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        measured = r["measured_s"]
        ratio = "" if measured is None else f"{measured / r['expected_s']:.2f}"
        lines.append(
            f"| {r['rule']} | {r['jobs']} | {r['expected_s']:.0f} "
            f"| {_number(measured)} ({r['measured_jobs']}) | {ratio} |"
        )
    return "\n".join(lines)


# Per condition at an experiment's largest size: the score over seeds and the paired difference
# to `real` over seeds and test sentences (analysis.significance).
CONDITION_COLUMNS = ["bleu_mean", "bleu_ci_low", "bleu_ci_high", "chrf_mean", "n_seeds"]
CONDITION_COLUMNS += ["bleu_delta", "bleu_delta_low", "bleu_delta_high"]
CONDITION_COLUMNS += ["seed_sd", "delta_in_seed_sd", "p_seeds_and_sentences"]
CONDITION_COLUMNS += ["p_sentences_bootstrap", "significant", "early_stopped"]
WORTH_COLUMNS = ["experiment", "generator", "synthetic_condition", "synthetic_bleu_mean"]
WORTH_COLUMNS += ["real_pairs_worth", "real_pairs_worth_low", "real_pairs_worth_high"]
WORTH_COLUMNS += ["worth_note", "low_note", "high_note"]
GAP_COLUMNS = ["experiment", "strategy", "condition", "size", "gap", "gap_significant"]
GAP_COLUMNS += ["gap_closed_mean", "gap_closed_ci_low", "gap_closed_ci_high", "gap_note"]
GAP_COLUMNS += ["deployable"]


def experiment_summary(results: Path, experiment: str) -> dict:
    """An experiment's conditions at its largest size, and the share of its students that early
    stopping ended (the rest hit a step or epoch cap)."""
    table = pl.read_csv(results / "tables" / f"{experiment}.csv")
    size = table["size"].max()
    largest = table.filter(pl.col("size") == size)
    runs = [
        json.loads(p.read_text()) for p in (results / "runs" / experiment).rglob("metrics.json")
    ]
    stops = [str(run["train"].get("stopped_by")) for run in runs]
    return {
        "largest_size": int(size),
        "conditions": {
            row["condition"]: {k: row.get(k) for k in CONDITION_COLUMNS}
            for row in largest.iter_rows(named=True)
        },
        "students": len(runs),
        "stopped_by": {reason: stops.count(reason) for reason in sorted(set(stops))},
        "early_stopped_share": stops.count("patience") / len(stops) if stops else None,
    }


def footprint_check(workdir: Path, configfile: Path, rules: list[dict]) -> list[dict]:
    """Per model-bearing rule, the footprint's expected job-seconds for the preset's config as
    README.md's estimate computes them (at the development CPU's assumed speed), with the pools
    the run made, beside the seconds the run's jobs took."""
    config = yaml.safe_load(configfile.read_text())
    config = footprint.with_defaults(config, REPO / footprint.SCHEMA)
    words, remaining = footprint.corpus_shape(config)
    made = footprint.pools_made(workdir / footprint.CLEANING_REPORT)
    scale = footprint.Scale(config, words, remaining, made)
    measured = {r["rule"]: r for r in rules}
    return [
        {
            "rule": name,
            "jobs": rule.jobs,
            # with the start-up each job is counted in the footprint's hours on the cores
            "expected_s": rule.expected_seconds + rule.jobs * footprint.STARTUP_SECONDS,
            "measured_s": measured[name]["total_s"] if name in measured else None,
            "measured_jobs": measured[name]["jobs"] if name in measured else 0,
        }
        for name, rule in footprint.study(scale).items()
    ]


def training_steps(results: Path) -> dict:
    """Optimizer steps and target tokens of every model the run trained (its train.json), by
    what it is: generators, the students of each experiment, recursion generations, the rest."""
    groups: dict[str, dict] = {}
    for path in sorted(results.rglob("train.json")):
        parts = path.relative_to(results).parts
        group = "/".join(parts[:2]) if parts[0] == "runs" else parts[0]
        record = json.loads(path.read_text())
        totals = groups.setdefault(group, {"models": 0, "steps": 0, "target_tokens": 0})
        totals["models"] += 1
        totals["steps"] += record["steps"]
        totals["target_tokens"] += record["target_tokens"]
    return groups


def optional_rows(path: Path, columns: list[str]) -> list[dict]:
    if not path.exists():
        return []
    table = pl.read_csv(path)
    return table.select([c for c in columns if c in table.columns]).to_dicts()


def summarise(workdir: Path) -> dict:
    results = workdir / "results"
    experiments = [e for e in ("scratch", "finetune") if (results / "tables" / f"{e}.csv").exists()]
    # Timings stay out of results (they would differ between identical runs): the logs have them.
    logs = (workdir / "logs" / "train_student").rglob("*.log")
    throughput = [float(m[-1]) for p in logs if (m := THROUGHPUT.findall(p.read_text()))]
    partial = optional_rows(results / "tables" / "partial.csv", WORTH_COLUMNS + ["human_share"])
    return {
        "experiments": {e: experiment_summary(results, e) for e in experiments},
        # the interpolated number of human pairs each full synthetic set is worth
        "real_pairs_worth": [row for row in partial if row.get("human_share") is None],
        "gap_closed": optional_rows(results / "tables" / "mitigations.csv", GAP_COLUMNS),
        "generators": optional_rows(
            results / "tables" / "generators.csv",
            ["generator", "architecture", "teacher_pairs", "bleu", "chrf"],
        ),
        "student_target_tokens_per_second": {
            "mean": sum(throughput) / len(throughput),
            "min": min(throughput),
            "max": max(throughput),
            "runs": len(throughput),
        }
        if throughput
        else None,
        "rules": rule_table(workdir),
        "training_steps": training_steps(results),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=REPO / "benchmarks/results/cpu_preset")
    parser.add_argument("--configfile", type=Path, default=REPO / "config" / "config.yaml")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--summarise-only", action="store_true")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="go on with an unfinished run in the workdir (its wall time is then the sum of "
        "its parts' spans)",
    )
    parser.add_argument(
        "--prioritize",
        nargs="+",
        default=(),
        metavar="TARGET",
        help="targets (e.g. results/tables/finetune.csv) whose jobs run first, so that a run "
        "cut short by a session's end has finished whole experiments",
    )
    parser.add_argument(
        "--download", action="store_true", help="download the corpus even beside a local copy"
    )
    args = parser.parse_args()
    summary = {"cores": args.cores}
    if args.resume:
        configfile = args.workdir / "config" / args.configfile.name
        summary["last_part_wall_seconds"] = run_workflow(
            args.workdir, configfile, args.cores, unlock=True, prioritize=args.prioritize
        )
        # The whole run's time: every part's span, without the pauses between them.
        spans = run_spans(args.workdir)
        summary.update(wall_seconds=sum(spans), snakemake_runs=len(spans), resumed=True)
    elif not args.summarise_only:
        shutil.rmtree(args.workdir, ignore_errors=True)
        args.workdir.mkdir(parents=True)
        # The preset's corpus paths are relative to the repository root.
        (args.workdir / "config").mkdir()
        config = args.configfile.read_text().replace("../shared/", f"{REPO.parent}/shared/")
        if not args.download and SHARED_MULTI30K.is_dir():
            # What README.md's --config override does: the same pools, without a network.
            config = yaml.safe_load(config)
            config["corpus"].update(
                format="tsv",
                tsv=str(SHARED_MULTI30K / "train.tsv"),
                test_tsv=str(SHARED_MULTI30K / "test_2016_flickr.tsv"),
            )
            config = yaml.safe_dump(config, sort_keys=False)
        configfile = args.workdir / "config" / args.configfile.name
        configfile.write_text(config)
        summary["wall_seconds"] = run_workflow(
            args.workdir, configfile, args.cores, prioritize=args.prioritize
        )
    summary.update(summarise(args.workdir))
    summary["rule_seconds"] = {r["rule"]: r["total_s"] for r in summary["rules"]}
    summary["footprint"] = footprint_check(args.workdir, args.configfile, summary["rules"])
    if not args.summarise_only:
        (args.workdir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    elif (args.workdir / "summary.json").exists():  # the run's own wall time
        recorded = json.loads((args.workdir / "summary.json").read_text())
        summary.update({k: recorded.get(k) for k in ("wall_seconds", "cores")})
    else:  # a run made by hand, perhaps in parts: the time its Snakemake runs took
        spans = run_spans(args.workdir)
        summary.update(wall_seconds=sum(spans), snakemake_runs=len(spans))
    print(json.dumps(summary, indent=2))
    print(markdown_table(summary["rules"], summary.get("wall_seconds"), summary["cores"]))
    print(footprint_table(summary["footprint"]))


if __name__ == "__main__":
    main()
