"""The jobs that build curricula, from every rule file that has them (train.smk: real, self, gen
and partial; mitigate.smk: S1-S3 and the sources- controls; recursion.smk: the lineages), and
the table of their prefixes' token counts.

They are many and small, so this module imports only polars and the study's curriculum code:
torch, scikit-learn, scipy and matplotlib would take most of such a job's time to import."""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl

from regurgitate.io import write_parquet, write_table
from regurgitate.study import curricula
from regurgitate.study.recursion import lineage_pairs, regime_curriculum

log = logging.getLogger(__name__)


def write_curriculum(curriculum: pl.DataFrame, out: Path) -> None:
    origins = dict(sorted(curriculum["origin"].value_counts().iter_rows()))
    log.info("%d pairs, targets by origin: %s", curriculum.height, origins)
    write_parquet(curriculum, out)


def curriculum_real(*, student_path: Path, seed: int, out: Path) -> None:
    """`real`: the student pool's human targets in seeded order."""
    write_curriculum(curricula.real_curriculum(pl.read_parquet(student_path), seed), out)


def curriculum_generated(
    *, student_path: Path, synthetic_path: Path, generator: str, seed: int, out: Path
) -> None:
    """`self` and `gen-<g>`: the same sources in the same order, the generator's targets."""
    curriculum = curricula.generated_curriculum(
        pl.read_parquet(student_path), pl.read_parquet(synthetic_path), generator, seed
    )
    write_curriculum(curriculum, out)


def curriculum_partial(
    *, student_path: Path, synthetic_path: Path, generator: str, percent: int, seed: int, out: Path
) -> None:
    """`partial-<g>-<pct>`: pct % human targets in every prefix, the rest the generator's."""
    curriculum = curricula.partial_curriculum(
        pl.read_parquet(student_path), pl.read_parquet(synthetic_path), generator, percent, seed
    )
    write_curriculum(curriculum, out)


def table_curricula(*, prefixes: list[dict], out: Path) -> pl.DataFrame:
    """The source and target tokens of every curriculum prefix a run trains on; `prefixes`
    holds experiment, condition, seed, size and the curriculum's path per run."""
    rows = []
    by_path: dict[str, list[dict]] = {}
    for prefix in prefixes:
        by_path.setdefault(prefix["path"], []).append(prefix)
    for path, runs in by_path.items():
        counts = curricula.prefix_tokens(pl.read_parquet(path), [run["size"] for run in runs])
        for run, count in zip(runs, counts, strict=True):
            labels = {k: run[k] for k in ("experiment", "condition", "seed")}
            rows.append({**labels, **count})
    table = pl.DataFrame(rows).sort("experiment", "condition", "size", "seed")
    write_table(table, out)
    return table


def curriculum_ordered(
    *,
    student_path: Path,
    synthetic_path: Path,
    generator: str,
    scores_path: Path,
    metric: str,
    seed: int,
    out: Path,
) -> None:
    """`ordered-<g>-<metric>`: the generator's pairs, best first by `metric`."""
    scores = pl.read_parquet(scores_path)
    if metric not in scores.columns:
        raise ValueError(f"{scores_path} has no {metric!r} scores (mitigations.metrics)")
    curriculum = curricula.ordered_curriculum(
        pl.read_parquet(student_path),
        pl.read_parquet(synthetic_path),
        generator,
        scores.select("id", pl.col(metric).alias("score")),
        seed,
    )
    write_curriculum(curriculum, out)


def curriculum_mixed(
    *, student_path: Path, synthetic_paths: dict[str, Path], seed: int, out: Path
) -> None:
    """`mixed-<g1>+<g2>[+...]`: each source's target from one generator, in equal shares."""
    synthetics = {g: pl.read_parquet(path) for g, path in synthetic_paths.items()}
    curriculum = curricula.mixed_curriculum(pl.read_parquet(student_path), synthetics, seed)
    write_curriculum(curriculum, out)


def curriculum_detector(
    *,
    student_path: Path,
    synthetic_path: Path,
    generator: str,
    p_human_path: Path,
    seed: int,
    out: Path,
) -> None:
    """`detector-<g>`: the generator's pairs, most human-looking first."""
    curriculum = curricula.detector_curriculum(
        pl.read_parquet(student_path),
        pl.read_parquet(synthetic_path),
        generator,
        pl.read_parquet(p_human_path),
        seed,
    )
    write_curriculum(curriculum, out)


def curriculum_sources(*, student_path: Path, selecting_path: Path, out: Path) -> None:
    """`sources-<c>`: the sources an S1 or S3 curriculum selects, in its order, with human
    targets."""
    curriculum = curricula.human_targets_of(
        pl.read_parquet(selecting_path), pl.read_parquet(student_path)
    )
    write_curriculum(curriculum, out)


def curriculum_recursion(
    *,
    regime: str,
    generation: int,
    size: int,
    out: Path,
    real_path: Path | None = None,
    human_path: Path | None = None,
    translation_paths: dict[int, str] | None = None,
    seed: int = 0,
    real_share: int | None = None,
) -> pl.DataFrame:
    """Generation 0: the first `size` rows of the `real` curriculum at `real_path`. Later
    generations: the regime's curriculum from generation 0's (`human_path`) and the earlier
    generations' translations (`translation_paths`, by generation)."""
    if generation == 0:
        curriculum = lineage_pairs(pl.read_parquet(real_path), size)
    else:
        translations = {int(g): pl.read_parquet(path) for g, path in translation_paths.items()}
        curriculum = regime_curriculum(
            regime,
            generation,
            pl.read_parquet(human_path),
            translations,
            seed=seed,
            real_share=real_share,
        )
    write_curriculum(curriculum, out)
    return curriculum
