"""Jobs of workflow/rules/report.smk: each experiment's table and learning curves, the
generators' own scores, and every table as a page of the report."""

from __future__ import annotations

import logging
import re
import shlex
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from regurgitate.analysis.aggregate import (
    GROUP_KEY,
    MIN_GENERATOR_BLEU,
    generator_learned,
    generator_table,
    load_run_translations,
    summarise,
)
from regurgitate.analysis.significance import differences_to_baseline
from regurgitate.io import atomic_path, read_json, write_table
from regurgitate.jobs.log import job_tag
from regurgitate.plots.tables import table_page
from regurgitate.study.vocabulary import REAL

log = logging.getLogger(__name__)


def table_experiment(
    *,
    run_paths: list[str],
    hypothesis_paths: list[str],
    test_path: Path,
    out: Path,
    seed: int,
    generator_metric_paths: list[str],
    self_generator: str | None,
    base_path: Path | None = None,
) -> pl.DataFrame:
    """Mean and 95% interval over seeds of every condition and size of one experiment, and each
    condition's BLEU difference to `real` at the same size with the tests of
    analysis.significance (`significant`: the two-level bootstrap over seeds and test
    sentences); `hypothesis_paths[i]` are the test translations of the run whose metrics are
    `run_paths[i]`. The steps whose weights the runs kept (`select`, `selected_step_min/max`),
    the share of runs that early stopping ended (`early_stopped`; the others hit a step or epoch
    cap), whether the generators that wrote a condition's targets learnt to translate
    (`generator_learned`, from their metrics JSON `generator_metric_paths`; `self` is
    `self_generator`'s) and, for E1, the base model's BLEU (`base_path`) stand beside."""
    runs, hypotheses = load_run_translations(run_paths, hypothesis_paths)
    references = pl.read_parquet(test_path)["target"].to_list()
    differences = differences_to_baseline(references, hypotheses, REAL, seed=seed)
    summary = (
        summarise(runs)
        .join(differences, on=GROUP_KEY, how="left")
        .join(_selected_steps(run_paths), on=GROUP_KEY, how="left")
    )
    learned = {
        record["generator"]: record["bleu"] >= MIN_GENERATOR_BLEU
        for record in map(read_json, generator_metric_paths)
    }
    summary = summary.with_columns(
        generator_learned(summary["condition"].to_list(), learned, self_generator)
    )
    if base_path is not None:
        summary = summary.with_columns(base_bleu=pl.lit(read_json(base_path)["bleu"]))
    log.info(
        "%d runs summarised into %d rows; against %s, %d of %d conditions differ (two-level "
        "bootstrap over seeds and sentences), %d untested (one seed)",
        len(run_paths),
        summary.height,
        REAL,
        differences["significant"].sum(),
        differences.height,
        differences["significant"].null_count(),
    )
    write_table(summary, out)
    return summary


def _selected_steps(run_paths: list[str]) -> pl.DataFrame:
    """Per condition and size: how the runs chose their weights, the range of the steps they
    kept, and the share of them that stopped on a plateau of dev scores."""
    rows = []
    for path in run_paths:
        record = read_json(path)
        train = record.get("train", {})
        rows.append(
            {
                **{key: record[key] for key in GROUP_KEY},
                "select": train.get("select", "best"),
                "step": train.get("selected_step", train.get("best_step")),
                "stopped_by": train.get("stopped_by"),
            }
        )
    schema = {"experiment": pl.String, "condition": pl.String, "size": pl.Int64}
    schema |= {"select": pl.String, "step": pl.Int64, "stopped_by": pl.String}
    return (
        pl.DataFrame(rows, schema=schema)
        .group_by(GROUP_KEY)
        .agg(
            pl.col("select").first(),
            pl.col("step").min().alias("selected_step_min"),
            pl.col("step").max().alias("selected_step_max"),
            (pl.col("stopped_by") == "patience").mean().alias("early_stopped"),
        )
    )


def table_generators(*, metric_paths: list[str], out: Path) -> pl.DataFrame:
    table = generator_table([read_json(path) for path in metric_paths])
    for line in not_learned_lines(table):
        log.warning("%s", line)
    write_table(table, out)
    return table


def not_learned_lines(table: pl.DataFrame) -> list[str]:
    """A line per generator of `table` (generators.csv) that did not learn to translate."""
    return [
        f"generator {row['generator']} has test BLEU {row['bleu']:.2f} (below "
        f"{MIN_GENERATOR_BLEU:g}): it did not learn to translate, so the conditions it wrote "
        f"measure nothing about generated text; give it more teacher pairs or training steps "
        f"(generators.{row['generator']})"
        for row in table.filter(~pl.col("generator_learned")).iter_rows(named=True)
    ]


def end_of_run_message(*, generators_path: Path) -> list[str]:
    """The lines the end-of-run message adds: each generator that did not learn to translate
    (from `generators_path`, results/tables/generators.csv; none where it was not made)."""
    if not Path(generators_path).exists():
        return []
    return not_learned_lines(pl.read_csv(generators_path))


def run_summary(
    *,
    experiments: list[str],
    configfiles: list[str],
    config_args: Sequence[str] = (),
    snakefile: str | None = None,
    root: Path = Path("."),
) -> list[tuple[int, str]]:
    """What a finished study prints last (Snakemake's `onsuccess`), as (logging level, text)
    blocks: each experiment's results at its largest size, every warning its jobs logged, and
    where the figures and the report are. Paths are under `root`, the working directory."""
    root = Path(root)
    call = snakemake_call(configfiles, config_args, snakefile, root, "--report report.html")
    tables = list(filter(None, (headline(root / TABLES / f"{e}.csv") for e in experiments)))
    not_learned = end_of_run_message(generators_path=root / TABLES / "generators.csv")
    heading = "The run is finished."
    if tables:
        heading += (
            " Test BLEU at each experiment's largest size: mean over seeds [95% interval]; "
            "difference to real [95% interval]; significant by the two-level bootstrap over "
            "seeds and test sentences."
        )
    return [
        (logging.INFO, "\n\n".join([heading, *tables])),
        *([(logging.WARNING, "\n".join(not_learned))] if not_learned else []),
        warnings_section(root, known=not_learned),
        (
            logging.INFO,
            f"Figures: {FIGURES}/ ({', '.join(figure_names(root)) or 'none'}; each also as "
            f"PDF). Tables: {TABLES}/.\nThe report, every table and figure with the "
            f"configuration, in one page:\n  {call}",
        ),
    ]


def failure_summary(
    *,
    snakemake_logs: list[str] | str,
    configfiles: list[str],
    config_args: Sequence[str] = (),
    snakefile: str | None = None,
    root: Path = Path("."),
) -> list[tuple[int, str]]:
    """What a failed run prints last (Snakemake's `onerror`), as (logging level, text) blocks:
    the jobs that failed, each with its log and the last line of that log (where the error's
    message is), that finished work is kept, and the warnings logged so far."""
    root = Path(root)
    if isinstance(snakemake_logs, str):
        snakemake_logs = [snakemake_logs]
    failed = failed_jobs(snakemake_logs) or unfinished_jobs(root)
    lines = [f"The run stopped: {len(failed)} job{'s' * (len(failed) != 1)} failed."]
    for job, logs in failed.items():
        lines.append(f"  {job}: {', '.join(logs) or '(no log)'}")
        lines += [f"      {error}" for path in logs if (error := last_error(root / path))]
    lines.append(
        "Everything that finished is kept, and each training run its last checkpoint: the same "
        "command runs only what is left, and training resumes where it stopped:\n  "
        + snakemake_call(configfiles, config_args, snakefile, root, "--cores <N>")
    )
    return [(logging.ERROR, "\n".join(lines)), warnings_section(root)]


TABLES = Path("results/tables")
FIGURES = Path("results/figures")
LOGS = Path("logs")
# At most this many kinds of warning are printed, each with this many of the logs that hold it;
# the rest are counted.
MAX_WARNING_KINDS = 15
LOGS_SHOWN = 3
# The longest name a warning may start with ("<name>: ") that sorting warnings by kind leaves out.
NAME_LENGTH = 40
# A job's log line, as regurgitate.jobs.log writes it: time, [job], level, logger: message.
LOG_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d [\d:,]+ (?:\[[^\]]*\] )?(?P<level>[A-Z]+) (?P<logger>\S+): (?P<message>.*)$"
)


def headline(path: Path) -> str:
    """One experiment's table (results/tables/<experiment>.csv) at its largest size, as text;
    empty where the table was not made."""
    if not path.exists():
        return ""
    table = pl.read_csv(path, infer_schema=False)
    size = max(int(value) for value in table["size"])
    rows = [row for row in table.iter_rows(named=True) if int(row["size"]) == size]
    rows.sort(key=lambda row: (row["condition"] != REAL, row["condition"]))
    cells = [("condition", "seeds", "BLEU", "vs real", "significant")]
    for row in rows:
        delta = "" if row["condition"] == REAL else _estimate(row, "bleu_delta")
        cells.append(
            (
                row["condition"] + (" *" if row.get("generator_learned") == "false" else ""),
                row.get("n_seeds") or "",
                _estimate(row, "bleu_mean", "bleu_ci_low", "bleu_ci_high"),
                delta,
                _significant(row),
            )
        )
    widths = [max(len(str(line[i])) for line in cells) for i in range(len(cells[0]))]
    text = [f"{rows[0]['experiment'] if rows else path.stem}, {size} training pairs:"]
    for line in cells:
        text.append("  ".join(f"{c!s:<{w}}" for c, w in zip(line, widths, strict=True)))
    text = [text[0]] + ["  " + line.rstrip() for line in text[1:]]
    if any(row.get("generator_learned") == "false" for row in rows):
        text.append("  * written by a generator that did not learn to translate (below)")
    return "\n".join(text)


def _estimate(row: dict, mean: str, low: str | None = None, high: str | None = None) -> str:
    low, high = low or f"{mean}_low", high or f"{mean}_high"
    if row.get(mean) in (None, ""):
        return "n/a"
    if row.get(low) in (None, "") or row.get(high) in (None, ""):
        return f"{float(row[mean]):.2f}"
    return f"{float(row[mean]):.2f} [{float(row[low]):.2f}, {float(row[high]):.2f}]"


def _significant(row: dict) -> str:
    if row["condition"] == REAL:
        return ""
    value = row.get("significant")
    if value in (None, ""):
        return "untested (one seed)" if row.get("significance_note") else "n/a"
    return "yes" if value.lower() == "true" else "no"


def collected_warnings(logs: Path) -> list[tuple[str, str, list[str]]]:
    """The warnings of every job's log under `logs`, by kind: (logger, an example message,
    the logs that hold one of its kind). A kind is a message without its numbers and the name
    it starts with, so that "weak: 12 of 300 pairs were cut" in one job and "strong: 9 of 300
    pairs were cut" in the next are one kind. Only each log's last attempt counts: a retried
    job's log starts with the attempts before it."""
    kinds: dict[tuple[str, str], tuple[str, list[str]]] = {}
    for path in sorted(Path(logs).rglob("*.log")):
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        starts = [i for i, line in enumerate(lines) if "job started" in line]
        for line in lines[starts[-1] if starts else 0 :]:
            match = LOG_LINE.match(line)
            if not match or match["level"] != "WARNING":
                continue
            key = (match["logger"], warning_kind(match["message"]))
            example, where = kinds.setdefault(key, (match["message"], []))
            if str(path) not in where:
                where.append(str(path))
    return [(logger, example, where) for (logger, _), (example, where) in kinds.items()]


def warning_kind(message: str) -> str:
    # Jobs start a message with what it is about (a generator, a run), in a few words.
    name, colon, rest = message.partition(": ")
    if colon and len(name) <= NAME_LENGTH:
        message = rest
    return re.sub(r"\d+(?:\.\d+)?", "#", message)


def warnings_section(root: Path, known: list[str] = ()) -> tuple[int, str]:
    """Every kind of warning the jobs logged, each with the logs that hold it, but those
    already said (`known`)."""
    found = [kind for kind in collected_warnings(root / LOGS) if kind[1] not in known]
    if not found:
        return logging.INFO, f"No job logged {'another' if known else 'a'} warning."
    other = " other" if known else ""
    lines = [f"The jobs logged {len(found)}{other} kind{'s' * (len(found) != 1)} of warning:"]
    for _, example, where in found[:MAX_WARNING_KINDS]:
        shown = ", ".join(_relative(path, root) for path in where[:LOGS_SHOWN])
        more = f" and {len(where) - LOGS_SHOWN} more" if len(where) > LOGS_SHOWN else ""
        lines.append(f"  - {example}")
        lines.append(f"    in {len(where)} log{'s' * (len(where) > 1)}: {shown}{more}")
    if len(found) > MAX_WARNING_KINDS:
        lines.append(
            f"  ... and {len(found) - MAX_WARNING_KINDS} more kinds: grep -r WARNING {LOGS}/"
        )
    return logging.WARNING, "\n".join(lines)


def figure_names(root: Path) -> list[str]:
    return sorted(path.name for path in (root / FIGURES).glob("*.png"))


def snakemake_call(
    configfiles: list[str],
    config_args: Sequence[str],
    snakefile: str | None,
    root: Path,
    extra: str,
) -> str:
    """The command that runs this study (its Snakefile, config files and --config overrides)
    with `extra`, as a user types it in `root`."""
    words = ["snakemake"]
    # Snakemake finds workflow/Snakefile in the working directory by itself.
    if snakefile and (root / "workflow" / "Snakefile").resolve() != Path(snakefile).resolve():
        words += ["-s", shlex.quote(str(snakefile))]
    words.append(extra)
    if configfiles:
        words += ["--configfile", *map(shlex.quote, map(str, configfiles))]
    if config_args:
        words += ["--config", *map(shlex.quote, config_args)]
    return " ".join(words)


def _relative(path: str, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return path


# Snakemake's own log: each failed job's block, and each finished job (a retried job that
# failed once and then finished is not a failure).
ERROR_IN_RULE = re.compile(r"^Error in rule (\S+):$")
JOB_FIELD = re.compile(r"^ +(jobid|log): (.*?)(?: \(check log file\(s\) for error details\))?$")
FINISHED_JOB = re.compile(r"^Finished jobid: (\d+)")


def failed_jobs(snakemake_logs: list[str]) -> dict[str, list[str]]:
    """The jobs that failed, by Snakemake's logs of this run: `rule (job id)` and the jobs' own
    logs."""
    failed: dict[str, tuple[str, list[str]]] = {}
    for path in snakemake_logs:
        if not Path(path).exists():
            continue
        rule = None
        for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
            if match := ERROR_IN_RULE.match(line):
                rule, jobid, logs = match[1], "?", []
            elif rule and (match := JOB_FIELD.match(line)):
                if match[1] == "jobid":
                    jobid = match[2]
                else:
                    logs = [item.strip() for item in match[2].split(",")]
                failed[jobid] = (rule, logs)
            elif match := FINISHED_JOB.match(line):
                failed.pop(match[1], None)
                rule = None
            elif not line.startswith(" "):
                rule = None
    return {f"{rule} (job {jobid})": logs for jobid, (rule, logs) in failed.items()}


def unfinished_jobs(root: Path) -> dict[str, list[str]]:
    """The jobs under `root` whose journal (regurgitate.jobs.log) is still there: they started
    and did not succeed. For when Snakemake's log names none."""
    found = {}
    for journal in sorted((root / LOGS).rglob(".*.attempts")):
        log_path = journal.relative_to(root).with_name(journal.name[1:].removesuffix(".attempts"))
        found[job_tag(log_path)] = [str(log_path)]
    return found


def last_error(log_path: Path) -> str:
    """The last line of a failed job's log, where its exception's message is, shortened."""
    if not log_path.exists():
        return ""
    lines = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    if not lines:
        return ""
    line = lines[-1].strip()
    return line if len(line) <= 300 else line[:297] + "..."


def table_html(*, table_path: Path, out: Path) -> None:
    """The report's page of a table: the CSV as written, read as text so nothing is re-rounded."""
    frame = pl.read_csv(table_path, infer_schema=False)
    with atomic_path(out) as tmp:
        tmp.write_text(table_page(frame, str(table_path)), encoding="utf-8")
