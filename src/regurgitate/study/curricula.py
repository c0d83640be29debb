"""Curricula: the ordered (source, target) lists that training conditions are made of.

Every condition draws its sources from the student pool in the same seeded order, so that at
each size k the conditions differ only in who wrote the targets (docs/study.md).
"""

from __future__ import annotations

import numpy as np
import polars as pl

CURRICULUM_COLUMNS = ["id", "source", "target", "origin"]


def seeded_order(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).permutation(n)


def real_curriculum(student: pl.DataFrame, seed: int) -> pl.DataFrame:
    """Human targets in seeded order."""
    order = seeded_order(student.height, seed)
    return student[order].select("id", "source", "target").with_columns(origin=pl.lit("human"))


def generated_targets(
    pool: pl.DataFrame, synthetic: pl.DataFrame, generator: str, pool_name: str = "student"
) -> pl.DataFrame:
    """id, source, target of every row of a pool, in pool order, the target by `generator`.

    Refuses synthetic data that misses an id of the pool or translated another source: a
    curriculum built on it would silently compare different sentences across conditions.
    """
    missing = pool.join(synthetic, on="id", how="anti")
    if missing.height:
        raise ValueError(
            f"generator {generator!r} has no target for {missing.height} {pool_name}-pool ids "
            f"(first: {missing['id'][0]}); regenerate its synthetic data"
        )
    joined = pool.select("id", "source").join(
        synthetic.select("id", pl.col("source").alias("generated_source"), "target"),
        on="id",
        how="left",
        maintain_order="left",
    )
    mismatched = joined.filter(pl.col("source") != pl.col("generated_source"))
    if mismatched.height:
        raise ValueError(
            f"generator {generator!r} translated other sources than the {pool_name} pool holds "
            f"(first id: {mismatched['id'][0]}); regenerate its synthetic data"
        )
    return joined.select("id", "source", "target")


def generated_curriculum(
    student: pl.DataFrame, synthetic: pl.DataFrame, generator: str, seed: int
) -> pl.DataFrame:
    """The student pool's sources, in the same order as `real`, with the generator's targets."""
    order = seeded_order(student.height, seed)
    targets = generated_targets(student, synthetic, generator)
    return targets[order].with_columns(origin=pl.lit(generator))


def human_pairs(size: int | np.ndarray, percent: int) -> int | np.ndarray:
    """Human pairs among the first `size` rows of a curriculum with `percent` % human targets."""
    return size * percent // 100


def human_rows(n: int, percent: int) -> np.ndarray:
    """Which of `n` rows keep their human target so that every prefix of k rows holds
    floor(k * percent / 100) of them: any size trained on sees the same share of real data."""
    if not 0 < percent < 100:
        raise ValueError(f"a partial condition's percentage must lie in 1..99, got {percent}")
    return np.diff(human_pairs(np.arange(n + 1), percent)) > 0


def partial_curriculum(
    student: pl.DataFrame, synthetic: pl.DataFrame, generator: str, percent: int, seed: int
) -> pl.DataFrame:
    """`percent` % human targets, the rest the generator's, in the same source order as `real`."""
    generated = generated_curriculum(student, synthetic, generator, seed)
    human = real_curriculum(student, seed)
    keep_human = pl.Series("human", human_rows(student.height, percent))
    return generated.with_columns(
        target=pl.when(keep_human).then(human["target"]).otherwise(pl.col("target")),
        origin=pl.when(keep_human).then(pl.lit("human")).otherwise(pl.col("origin")),
    )


def _ranked(curriculum: pl.DataFrame, values: pl.DataFrame, column: str) -> pl.DataFrame:
    """`curriculum` sorted by `values[column]` (one per id), highest first.

    The sort is stable, so ties keep the curriculum's seeded order and the result is
    deterministic.
    """
    if values["id"].is_duplicated().any():
        raise ValueError(f"{column} has more than one value for some ids")
    joined = curriculum.join(
        values.select("id", column), on="id", how="left", maintain_order="left"
    )
    value = pl.col(column).cast(pl.Float64)
    missing = joined.filter(value.is_null() | value.is_nan())
    if missing.height:
        raise ValueError(
            f"{column} is missing (or NaN) for {missing.height} student-pool ids "
            f"(first: {missing['id'][0]})"
        )
    ranked = joined.sort(column, descending=True, maintain_order=True)
    return ranked.select(CURRICULUM_COLUMNS)


def ordered_curriculum(
    student: pl.DataFrame,
    synthetic: pl.DataFrame,
    generator: str,
    scores: pl.DataFrame,
    seed: int,
) -> pl.DataFrame:
    """The generator's targets, best first: S1 of the study.

    `scores` has columns `id` and `score` (higher is better), one row per student-pool id.
    """
    curriculum = generated_curriculum(student, synthetic, generator, seed)
    return _ranked(curriculum, scores, "score")


def detector_curriculum(
    student: pl.DataFrame,
    synthetic: pl.DataFrame,
    generator: str,
    p_human: pl.DataFrame,
    seed: int,
) -> pl.DataFrame:
    """The generator's targets, most human-looking first: S3 of the study.

    `p_human` has columns `id` and `p_human` (the detector's probability that the pair is a
    human translation), one row per student-pool id.
    """
    curriculum = generated_curriculum(student, synthetic, generator, seed)
    return _ranked(curriculum, p_human, "p_human")


def mixed_curriculum(
    student: pl.DataFrame, synthetics: dict[str, pl.DataFrame], seed: int
) -> pl.DataFrame:
    """Every source once, its target by one of the generators, in equal shares: S2 of the study.

    Sources come in the seeded order of `real`. Consecutive blocks of as many rows as there are
    generators hold each generator once, in a seeded order per block, so every prefix (every
    training size) has equal shares up to one pair. `origin` names the generator of each row.
    The assignment depends on the set of generators, not on the order of `synthetics`.
    """
    names = sorted(synthetics)
    if len(names) < 2:
        raise ValueError(f"a mix needs at least two generators, got {names}")
    order = seeded_order(student.height, seed)
    targets = [generated_targets(student, synthetics[g], g)["target"][order] for g in names]
    blocks = -(-student.height // len(names))
    rng = np.random.default_rng([seed, len(names)])
    picks = rng.permuted(np.tile(np.arange(len(names)), (blocks, 1)), axis=1).ravel()
    picks = picks[: student.height]
    chosen = np.stack([t.to_numpy() for t in targets])[picks, np.arange(student.height)]
    return student[order].select(
        "id",
        "source",
        pl.Series("target", chosen, dtype=pl.String),
        pl.Series("origin", np.asarray(names)[picks], dtype=pl.String),
    )


def human_targets_of(curriculum: pl.DataFrame, student: pl.DataFrame) -> pl.DataFrame:
    """`curriculum`'s sources in its order, each with its human target from the student pool:
    the control that separates which sources a mitigation selects from which targets it keeps."""
    human = student.select("id", pl.col("target").alias("human_target"))
    joined = curriculum.join(human, on="id", how="left", maintain_order="left")
    missing = joined.filter(pl.col("human_target").is_null())
    if missing.height:
        raise ValueError(
            f"{missing.height} curriculum ids are not in the student pool "
            f"(first: {missing['id'][0]})"
        )
    return joined.select(
        "id", "source", pl.col("human_target").alias("target"), origin=pl.lit("human")
    )


def prefix_tokens(curriculum: pl.DataFrame, sizes: list[int]) -> list[dict]:
    """Whitespace tokens of the sources and targets in each size-k prefix: what a run of size k
    trains on. Conditions of one size can differ in text: S1 and S3 favour short or long pairs,
    and generated targets are shorter or longer than human ones."""
    target = curriculum["target"].str.split(" ").list.len().cum_sum()
    source = curriculum["source"].str.split(" ").list.len().cum_sum()
    rows = []
    for size in sizes:
        if size > curriculum.height:
            raise ValueError(f"a prefix of {size} pairs from a curriculum of {curriculum.height}")
        rows.append(
            {
                "size": size,
                "source_tokens": int(source[size - 1]),
                "target_tokens": int(target[size - 1]),
                "target_tokens_per_pair": int(target[size - 1]) / size,
            }
        )
    return rows
