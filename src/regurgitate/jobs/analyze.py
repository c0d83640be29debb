"""Jobs of workflow/rules/analyze.smk: the mechanisms (errors and lexical diversity per source
of targets) and what real data is worth (the fewest human pairs matching a synthetic set)."""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl

from regurgitate.analysis.aggregate import (
    bleu_losses,
    load_run_translations,
    load_runs,
    summarise,
    with_generator_learned,
)
from regurgitate.analysis.diversity import diversity_sample_size
from regurgitate.analysis.mechanisms import mechanisms_table, source_mechanisms
from regurgitate.analysis.real_data_worth import (
    PARTIAL_SCHEMA,
    WORTH_COLUMNS,
    partial_rows,
    real_pairs_worth,
)
from regurgitate.io import read_json, write_json, write_table
from regurgitate.study.vocabulary import HUMAN, REAL

log = logging.getLogger(__name__)


def mechanisms_sample_size(
    *, student_path: Path, synthetic_paths: dict[str, str], settings: dict, out: Path
) -> dict:
    """How many tokens every source's diversity sample holds: the most that every source (the
    human targets and each of `synthetic_paths`) has, up to mechanisms.sample_tokens. Sources
    of fewer than MIN_DIVERSITY_TOKENS tokens are left out (`excluded`): they get no diversity
    values (analysis.diversity.diversity_sample_size)."""
    texts = {HUMAN: pl.read_parquet(student_path)["target"].to_list()}
    texts |= {
        name: pl.read_parquet(path)["target"].to_list() for name, path in synthetic_paths.items()
    }
    record = diversity_sample_size(
        texts,
        settings["sample_tokens"],
        settings["keep_punctuation"],
        setting="mechanisms.sample_tokens",
    )
    write_json(record, out)
    return record


def mechanisms_source(
    *,
    student_path: Path,
    synthetic_path: Path | None,
    name: str,
    settings: dict,
    sample_size_path: Path,
    seed: int,
    out: Path,
) -> dict:
    """Error and diversity measures of the human targets (no synthetic file) or a generator's
    (or a mix's curriculum), on the common sample size of mechanisms_sample_size."""
    synthetic = pl.read_parquet(synthetic_path) if synthetic_path else None
    sample_size = read_json(sample_size_path)
    # A source too small to measure gets no diversity values (a sample-size record written
    # before `excluded` was added leaves none out).
    excluded = name in sample_size.get("excluded", [])
    sample_tokens = None if excluded else sample_size["sample_tokens"]
    record = source_mechanisms(
        pl.read_parquet(student_path),
        synthetic,
        name,
        chrf_threshold=settings["chrf_threshold"],
        sample_tokens=sample_tokens,
        bootstrap=settings["bootstrap"],
        seed=seed,
        keep_punctuation=settings["keep_punctuation"],
    )
    diversity = record["diversity"]
    log.info(
        "%s: error rate %s, %s",
        name,
        "n/a" if record["error_rate"] is None else f"{record['error_rate']:.3f}",
        "no diversity values (too few tokens)"
        if diversity is None
        else f"MTLD {diversity['mtld']['value']:.1f}, TTR {diversity['ttr']['value']:.4f} "
        f"over {sample_tokens} tokens",
    )
    write_json(record, out)
    return record


def table_mechanisms(
    *,
    record_paths: list[str],
    run_paths: list[str],
    generator_metric_paths: list[str],
    losses: dict[str, dict],
    out: Path,
) -> pl.DataFrame:
    """`losses` maps each experiment to {"size": largest size, "conditions": {generator:
    condition id}}: where the students' BLEU loss per generator is read."""
    runs = load_runs(run_paths)
    loss = pl.concat(
        [
            bleu_losses(runs, experiment, spec["size"], spec["conditions"])
            for experiment, spec in losses.items()
        ]
    )
    generator_bleu = {
        record["generator"]: record["bleu"] for record in map(read_json, generator_metric_paths)
    }
    table = mechanisms_table([read_json(p) for p in record_paths], loss, generator_bleu)
    write_table(table, out, decimals=4)
    return table


def table_partial(
    *,
    run_paths: list[str],
    hypothesis_paths: list[str],
    test_path: Path,
    specs: dict[str, dict],
    out: Path,
    seed: int,
    generators_table: Path,
) -> pl.DataFrame:
    """How many human pairs each generator's full synthetic set is worth (the crossing of the
    `real` curve, with its bootstrap interval), and each partial mix against the full set, per
    experiment (analysis.real_data_worth), with whether the generator learnt to translate
    (`generator_learned`, from `generators_table`: mixing human pairs into noise measures
    nothing about generated text).

    `specs` maps each experiment to {"size": largest size, "conditions": {generator: condition}}.
    """
    runs, translations = load_run_translations(run_paths, hypothesis_paths)
    references = pl.read_parquet(test_path)["target"].to_list()
    summary = summarise(runs)
    rows = []
    for experiment, spec in specs.items():
        by_run = _translations_by_condition(translations, experiment)
        for generator, condition in spec["conditions"].items():
            rows += _worth_rows(references, by_run, summary, experiment, generator, condition,
                                spec["size"], seed)  # fmt: skip
    table = pl.DataFrame(rows, schema=PARTIAL_SCHEMA)
    table = with_generator_learned(table, generators_table)
    for row in table.filter(pl.col("compared") == REAL).iter_rows(named=True):
        log.info(
            "%s %s: %s pairs at BLEU %.2f are worth %s human pairs [%s, %s] (%s)",
            row["experiment"],
            row["generator"],
            f"{row['synthetic_pairs']:,}",
            row["synthetic_bleu_mean"],
            row["real_pairs_worth"],
            row["real_pairs_worth_low"] or row["low_note"],
            row["real_pairs_worth_high"] or row["high_note"],
            row["worth_note"],
        )
    write_table(table, out)
    return table


def _translations_by_condition(translations: dict, experiment: str) -> dict:
    """condition -> size -> seed -> test translations of one experiment's runs."""
    grouped: dict[str, dict[int, dict[int, list[str]]]] = {}
    for (run_experiment, condition, size, run_seed), lines in translations.items():
        if run_experiment == experiment:
            grouped.setdefault(condition, {}).setdefault(size, {})[run_seed] = lines
    return grouped


def _bleu_of(summary: pl.DataFrame, experiment: str, condition: str, size: int) -> dict:
    row = summary.filter(
        (pl.col("experiment") == experiment)
        & (pl.col("condition") == condition)
        & (pl.col("size") == size)
    )
    if row.height != 1:
        raise ValueError(f"{experiment}: no runs of {condition} at size {size}")
    return {c: row[c][0] for c in ("bleu_mean", "bleu_ci_low", "bleu_ci_high")}


def _worth_rows(
    references: list[str],
    by_run: dict,
    summary: pl.DataFrame,
    experiment: str,
    generator: str,
    condition: str,
    full_size: int,
    seed: int,
) -> list[dict]:
    """The crossing row and the partial mixes' rows of one generator in one experiment."""
    full = by_run[condition]
    head = {
        "experiment": experiment,
        "generator": generator,
        "synthetic_condition": condition,
        "synthetic_pairs": full_size,
        **{
            f"synthetic_{k}": v
            for k, v in _bleu_of(summary, experiment, condition, full_size).items()
        },
    }
    worth = real_pairs_worth(references, by_run[REAL], full[full_size], seed=seed)
    rows = [
        {
            **head,
            "compared": REAL,
            **{k: worth[k] for k in WORTH_COLUMNS},
            "paired_seeds": worth["paired_seeds"],
        }
    ]
    partial = {
        (name, size): runs
        for name, sizes in by_run.items()
        if name.startswith(f"partial-{generator}-")
        for size, runs in sizes.items()
    }
    for row in partial_rows(references, partial, full, seed=seed):
        bleu = _bleu_of(summary, experiment, row["condition"], row["size"])
        rows.append({**head, "compared": row.pop("condition"), **bleu, **row})
    return rows
