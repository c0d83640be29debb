import polars as pl
import pytest

from regurgitate.conditions import (
    curriculum_prefix,
    generated_curriculum,
    partial_curriculum,
    real_curriculum,
)


def student(n=20) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": [f"student-{i:06d}" for i in range(n)],
            "source": [f"quelle {i}" for i in range(n)],
            "target": [f"human {i}" for i in range(n)],
        }
    )


def synthetic(pool: pl.DataFrame) -> pl.DataFrame:
    # Rows in another order than the pool, as a generator may write them.
    return pool.select("id", "source", pl.format("machine {}", pl.col("id")).alias("target"))[::-1]


def test_real_is_a_seeded_shuffle_of_human_targets():
    pool = student()
    a, b = real_curriculum(pool, seed=1), real_curriculum(pool, seed=1)
    assert a.equals(b)
    assert not a.equals(real_curriculum(pool, seed=2))
    assert sorted(a["id"]) == sorted(pool["id"])
    assert a.columns == ["id", "source", "target", "origin"]
    assert set(a["origin"]) == {"human"}
    assert a["id"].to_list() != pool["id"].to_list()


def test_generated_curriculum_uses_the_same_sources_in_the_same_order():
    pool = student()
    real = real_curriculum(pool, seed=7)
    gen = generated_curriculum(pool, synthetic(pool), "weak", seed=7)
    assert gen["id"].to_list() == real["id"].to_list()
    assert gen["source"].to_list() == real["source"].to_list()
    assert all(t == f"machine {i}" for i, t in zip(gen["id"], gen["target"], strict=True))
    assert set(gen["origin"]) == {"weak"}


def test_missing_or_foreign_translations_are_refused():
    pool = student()
    with pytest.raises(ValueError, match="no target for 1 student-pool ids"):
        generated_curriculum(pool, synthetic(pool).head(19), "weak", seed=1)
    other = synthetic(pool).with_columns(pl.lit("andere quelle").alias("source"))
    with pytest.raises(ValueError, match="other sources"):
        generated_curriculum(pool, other, "weak", seed=1)


def test_sizes_are_prefixes():
    curriculum = real_curriculum(student(), seed=3)
    assert curriculum_prefix(curriculum, 5).equals(curriculum.head(5))
    with pytest.raises(ValueError, match="exceeds"):
        curriculum_prefix(curriculum, 21)


@pytest.mark.parametrize("percent", [10, 25, 50, 99])
def test_every_prefix_of_a_partial_curriculum_holds_its_share_of_human_targets(percent):
    pool = student(40)
    partial = partial_curriculum(pool, synthetic(pool), "weak", percent, seed=5)
    real = real_curriculum(pool, seed=5)
    assert partial["id"].to_list() == real["id"].to_list()
    is_human = (partial["origin"] == "human").to_list()
    for k in range(1, 41):
        assert sum(is_human[:k]) == k * percent // 100
    for row in partial.iter_rows(named=True):
        expected = f"human {int(row['id'][-6:])}" if row["origin"] == "human" else None
        assert row["target"] == (expected or f"machine {row['id']}")
    assert set(partial["origin"]) == {"human", "weak"}


def test_partial_percentage_must_be_a_proper_share():
    pool = student()
    with pytest.raises(ValueError, match="1..99"):
        partial_curriculum(pool, synthetic(pool), "weak", 100, seed=1)
