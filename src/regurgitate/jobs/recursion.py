"""Jobs of workflow/rules/recursion.smk: each generation's translations'
measures, the sample size they share, and the recursion's table and figure.

Training, translating and test scoring go through the jobs every model of the study uses
(jobs.train.train_model, jobs.generate.translate_pool, jobs.evaluate.evaluate_model); its
curricula are built by jobs.curricula.curriculum_recursion.
"""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl

from regurgitate.analysis.diversity import diversity_sample_size
from regurgitate.analysis.recursion import (
    NoRareWords,
    generation_differences,
    generation_measures,
    measure_values,
    recursion_table,
)
from regurgitate.analysis.significance import RESAMPLES, TRIALS
from regurgitate.io import read_json, read_lines, write_json, write_table
from regurgitate.study.vocabulary import HUMAN

log = logging.getLogger(__name__)

RUN_LABELS = ("regime", "generation", "size", "seed")


def recursion_sample_size(
    *,
    human_paths: list[str],
    synthetic_paths: list[str],
    cap: int,
    keep_punctuation: bool,
    out: Path,
) -> dict:
    """The tokens every diversity sample of the recursion holds: the most that every lineage's
    human targets and every generation's translations have, up to `cap`. Texts of fewer than
    MIN_DIVERSITY_TOKENS tokens are left out (`excluded`, by path): they get no diversity values
    (analysis.diversity.diversity_sample_size)."""
    texts = {
        str(path): pl.read_parquet(path)["target"].to_list()
        for path in [*human_paths, *synthetic_paths]
    }
    record = diversity_sample_size(texts, cap, keep_punctuation, setting="recursion.sample_tokens")
    write_json(record, out)
    return record


def measures_recursion(
    *,
    human_path: Path,
    synthetic_path: Path,
    student_path: Path,
    sample_size_path: Path,
    labels: dict,
    settings: dict,
    seed: int,
    out: Path,
    with_human: bool = False,
) -> dict:
    """Errors, diversity and tail of one generation's translations of its lineage's sources
    (rare words by the student pool's human targets at `student_path`); `with_human`
    (generation 0) also measures the lineage's human targets."""
    human = pl.read_parquet(human_path)
    sample_size = read_json(sample_size_path)
    common = {
        "tail_corpus": pl.read_parquet(student_path)["target"].to_list(),
        "chrf_threshold": settings["chrf_threshold"],
        "bootstrap": settings["bootstrap"],
        "seed": seed,
        "keep_punctuation": settings["keep_punctuation"],
        "tail_max_count": settings["tail_max_count"],
    }

    def sample_tokens(path: Path) -> int | None:
        return None if str(path) in sample_size["excluded"] else sample_size["sample_tokens"]

    name = f"{labels['regime']}/{labels['generation']}"
    try:
        record = generation_measures(
            human,
            pl.read_parquet(synthetic_path),
            name,
            sample_tokens=sample_tokens(synthetic_path),
            **common,
        )
    except NoRareWords as err:
        raise NoRareWords(
            f"{human_path}: {err} (recursion.tail_max_count={settings['tail_max_count']})"
        ) from err
    record.update(labels)
    if with_human:
        record[HUMAN] = generation_measures(
            human, None, HUMAN, sample_tokens=sample_tokens(human_path), **common
        )
    mtld = record["diversity"]["mtld"]["value"] if record["diversity"] else float("nan")
    log.info(
        "%s at %d pairs, seed %d: error rate %.3f, MTLD %.1f, %d of %d rare words",
        name,
        labels["size"],
        labels["seed"],
        record["error_rate"],
        mtld,
        record["tail"]["produced"],
        record["tail"]["rare_words"],
    )
    write_json(record, out)
    return record


def _runs(metric_paths: list[str], measure_paths: list[str]) -> pl.DataFrame:
    """One row per run (scores and measures), and one per lineage for its human targets."""
    measures = {}
    humans = []
    for path in measure_paths:
        record = read_json(path)
        key = tuple(record[label] for label in RUN_LABELS)
        measures[key] = measure_values(record)
        if HUMAN in record:
            humans.append(
                {"regime": HUMAN, "generation": None, "size": key[2], "seed": key[3]}
                | measure_values(record[HUMAN])
            )
    rows = []
    for path in metric_paths:
        record = read_json(path)
        key = tuple(record[label] for label in RUN_LABELS)
        if key not in measures:
            raise ValueError(f"{path}: no measures of the run {key}")
        rows.append(
            dict(zip(RUN_LABELS, key, strict=True))
            | {"bleu": record["bleu"], "chrf": record["chrf"]}
            | measures[key]
        )
    return pl.DataFrame([*rows, *humans], infer_schema_length=None)


def table_recursion(
    *,
    metric_paths: list[str],
    hypothesis_paths: list[str],
    measure_paths: list[str],
    test_path: Path,
    seed: int,
    out: Path,
) -> pl.DataFrame:
    """Per regime, generation and size: scores, errors, diversity and tail over seeds, and the
    paired tests against generation 0; `hypothesis_paths[i]` are the test translations of the
    run whose metrics are `metric_paths[i]`."""
    runs = _runs(metric_paths, measure_paths)
    references = pl.read_parquet(test_path)["target"].to_list()
    hypotheses = {
        tuple(read_json(metrics)[label] for label in RUN_LABELS): read_lines(lines)
        for metrics, lines in zip(metric_paths, hypothesis_paths, strict=True)
    }
    differences = generation_differences(
        references, hypotheses, seed=seed, resamples=RESAMPLES, trials=TRIALS
    )
    table = recursion_table(runs, differences)
    log.info(
        "%d runs in %d rows; %d of %d generations differ from generation 0 (both paired tests)",
        len(metric_paths),
        table.height,
        differences["significant"].sum(),
        differences.height,
    )
    write_table(table, out, decimals=4)
    return table
