import subprocess
import sys

import polars as pl
import pytest
from conftest import REPO

from regurgitate.study.curricula import (
    detector_curriculum,
    generated_curriculum,
    human_targets_of,
    mixed_curriculum,
    ordered_curriculum,
    partial_curriculum,
    prefix_tokens,
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


def named_synthetic(pool: pl.DataFrame, name: str) -> pl.DataFrame:
    return pool.select("id", "source", pl.format(name + " {}", pl.col("id")).alias("target"))[::-1]


def test_ordered_puts_the_best_scores_first_and_breaks_ties_by_the_seeded_order():
    pool = student()
    gen = generated_curriculum(pool, synthetic(pool), "weak", seed=4)
    # Scores 0..4 repeated: four ties per value.
    score = {f"student-{i:06d}": float(i % 5) for i in range(20)}
    scores = pl.DataFrame({"id": list(score), "score": list(score.values())})[::-1]
    ordered = ordered_curriculum(pool, synthetic(pool), "weak", scores, seed=4)
    values = [score[i] for i in ordered["id"]]
    assert values == sorted(values, reverse=True)
    assert ordered.columns == ["id", "source", "target", "origin"]
    assert set(ordered["origin"]) == {"weak"}
    # Within a tie the rows keep the order of gen-weak (the seeded order).
    seeded = [i for i in gen["id"] if score[i] == 4.0]
    assert ordered["id"].head(4).to_list() == seeded
    # Targets stay with their ids.
    assert all(t == f"machine {i}" for i, t in zip(ordered["id"], ordered["target"], strict=True))
    assert ordered.equals(ordered_curriculum(pool, synthetic(pool), "weak", scores, seed=4))
    assert not ordered.equals(ordered_curriculum(pool, synthetic(pool), "weak", scores, seed=5))


def test_ordered_refuses_missing_or_duplicate_scores():
    pool = student()
    scores = pl.DataFrame({"id": pool["id"], "score": [1.0] * 20})
    with pytest.raises(ValueError, match="missing .* for 1 student-pool ids"):
        ordered_curriculum(pool, synthetic(pool), "weak", scores.head(19), seed=1)
    nan = scores.with_columns(
        score=pl.when(pl.int_range(20) == 3).then(float("nan")).otherwise(1.0)
    )
    with pytest.raises(ValueError, match="NaN"):
        ordered_curriculum(pool, synthetic(pool), "weak", nan, seed=1)
    with pytest.raises(ValueError, match="more than one value"):
        ordered_curriculum(pool, synthetic(pool), "weak", pl.concat([scores, scores]), seed=1)
    # The generator's data is validated as for gen-<g>.
    with pytest.raises(ValueError, match="no target for 1 student-pool ids"):
        ordered_curriculum(pool, synthetic(pool).head(19), "weak", scores, seed=1)


def test_detector_puts_the_most_human_first():
    pool = student()
    p = pl.DataFrame({"id": pool["id"], "p_human": [i / 20 for i in range(20)]})
    ordered = detector_curriculum(pool, synthetic(pool), "weak", p, seed=2)
    assert ordered["id"].to_list() == pool["id"].to_list()[::-1]
    assert set(ordered["origin"]) == {"weak"}


@pytest.mark.parametrize("n, names", [(20, ["a", "b"]), (23, ["a", "b", "c"]), (7, list("abcd"))])
def test_mixed_gives_equal_shares_in_every_prefix(n, names):
    pool = student(n)
    synthetics = {g: named_synthetic(pool, g) for g in names}
    mixed = mixed_curriculum(pool, synthetics, seed=3)
    real = real_curriculum(pool, seed=3)
    assert mixed.columns == ["id", "source", "target", "origin"]
    assert mixed["id"].to_list() == real["id"].to_list()
    assert mixed["source"].to_list() == real["source"].to_list()
    # Each row's target is its origin's translation of that very source.
    assert all(
        t == f"{g} {i}"
        for i, t, g in zip(mixed["id"], mixed["target"], mixed["origin"], strict=True)
    )
    origins = mixed["origin"].to_list()
    for k in range(1, n + 1):
        counts = [origins[:k].count(g) for g in names]
        assert max(counts) - min(counts) <= 1, (k, counts)
    assert mixed.equals(mixed_curriculum(pool, dict(reversed(synthetics.items())), seed=3))


def test_mixed_assignment_is_seeded_and_validated():
    pool = student(40)
    synthetics = {g: named_synthetic(pool, g) for g in ["a", "b"]}
    a, b = mixed_curriculum(pool, synthetics, seed=1), mixed_curriculum(pool, synthetics, seed=2)
    assert a.equals(mixed_curriculum(pool, synthetics, seed=1))
    assert not a.equals(b)
    # Not a fixed alternation: the per-block order is drawn.
    assert a["origin"].to_list()[0::2] != ["a"] * 20 and a["origin"].to_list()[0::2] != ["b"] * 20
    with pytest.raises(ValueError, match="at least two generators"):
        mixed_curriculum(pool, {"a": synthetics["a"]}, seed=1)
    with pytest.raises(ValueError, match="generator 'b' has no target"):
        mixed_curriculum(pool, {"a": synthetics["a"], "b": synthetics["b"].head(39)}, seed=1)


def test_prefix_tokens_count_what_each_size_trains_on():
    curriculum = pl.DataFrame(
        {
            "id": ["a", "b", "c"],
            "source": ["ein haus", "der hund bellt", "ja"],
            "target": ["a house", "the dog barks loudly", "yes"],
            "origin": ["human"] * 3,
        }
    )
    rows = prefix_tokens(curriculum, [1, 3])
    assert rows == [
        {"size": 1, "source_tokens": 2, "target_tokens": 2, "target_tokens_per_pair": 2.0},
        {"size": 3, "source_tokens": 6, "target_tokens": 7, "target_tokens_per_pair": 7 / 3},
    ]
    with pytest.raises(ValueError, match="a prefix of 4 pairs"):
        prefix_tokens(curriculum, [4])


def test_a_source_control_keeps_the_order_and_restores_human_targets():
    student = pl.DataFrame(
        {"id": ["a", "b", "c"], "source": ["x", "y", "z"], "target": ["X", "Y", "Z"]}
    )
    ordered = pl.DataFrame(
        {"id": ["c", "a"], "source": ["z", "x"], "target": ["zz", "xx"], "origin": ["g", "g"]}
    )
    control = human_targets_of(ordered, student)
    assert control.rows() == [("c", "z", "Z", "human"), ("a", "x", "X", "human")]
    with pytest.raises(ValueError, match="not in the student pool"):
        human_targets_of(ordered.with_columns(id=pl.lit("q")), student)


def test_the_curriculum_jobs_start_without_the_heavy_libraries():
    """About a hundred curriculum jobs in the CPU preset: each would spend most of its time
    importing torch, scikit-learn, scipy or matplotlib, which none of them uses."""
    scripts = sorted((REPO / "workflow" / "scripts").glob("curriculum_*.py"))
    assert len(scripts) >= 8
    imports = {line for s in scripts for line in s.read_text().splitlines() if "import" in line}
    jobs = {line.split()[1] for line in imports if line.startswith("from regurgitate")}
    assert jobs == {"regurgitate.jobs.log", "regurgitate.jobs.curricula"}
    heavy = ("torch", "sklearn", "scipy", "matplotlib", "openai", "anthropic")
    check = (
        "import sys, regurgitate.jobs.log, regurgitate.jobs.curricula\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
