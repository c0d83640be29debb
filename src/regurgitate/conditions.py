"""Curricula: the ordered (source, target) lists that training conditions are made of.

Every condition draws its sources from the student pool in the same seeded order, so that at
each size k the conditions differ only in who wrote the targets (DESIGN.md §2).
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl

CURRICULUM_COLUMNS = ["id", "source", "target", "origin"]

CONDITION_PATTERN = re.compile(r"^(real|self|gen-[A-Za-z0-9_]+|partial-[A-Za-z0-9_]+-[0-9]+)$")


def seeded_order(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).permutation(n)


def real_curriculum(student: pl.DataFrame, seed: int) -> pl.DataFrame:
    """Human targets in seeded order."""
    order = seeded_order(student.height, seed)
    return student[order].select("id", "source", "target").with_columns(origin=pl.lit("human"))


def generated_curriculum(
    student: pl.DataFrame, synthetic: pl.DataFrame, generator: str, seed: int
) -> pl.DataFrame:
    """The student pool's sources, in the same order as `real`, with the generator's targets."""
    missing = student.join(synthetic, on="id", how="anti")
    if missing.height:
        raise ValueError(
            f"generator {generator!r} has no target for {missing.height} student-pool ids "
            f"(first: {missing['id'][0]}); regenerate its synthetic data"
        )
    joined = student.select("id", "source").join(
        synthetic.select("id", pl.col("source").alias("generated_source"), "target"),
        on="id",
        how="left",
        maintain_order="left",
    )
    mismatched = joined.filter(pl.col("source") != pl.col("generated_source"))
    if mismatched.height:
        raise ValueError(
            f"generator {generator!r} translated other sources than the student pool holds "
            f"(first id: {mismatched['id'][0]}); regenerate its synthetic data"
        )
    order = seeded_order(student.height, seed)
    return joined[order].select("id", "source", "target").with_columns(origin=pl.lit(generator))


def human_rows(n: int, percent: int) -> np.ndarray:
    """Which of `n` rows keep their human target so that every prefix of k rows holds
    floor(k * percent / 100) of them: any size trained on sees the same share of real data."""
    if not 0 < percent < 100:
        raise ValueError(f"a partial condition's percentage must lie in 1..99, got {percent}")
    k = np.arange(n + 1) * percent // 100
    return np.diff(k) > 0


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


def curriculum_prefix(curriculum: pl.DataFrame, size: int) -> pl.DataFrame:
    """The first `size` rows: what training at that size sees."""
    if size > curriculum.height:
        raise ValueError(f"size {size} exceeds the curriculum's {curriculum.height} pairs")
    return curriculum.head(size)
