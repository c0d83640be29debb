import random
import subprocess
import sys

import numpy as np
import polars as pl
import pytest

from regurgitate.analysis.detector import (
    detector_data,
    evaluate_detector,
    load_detector,
    train_detector,
)
from regurgitate.io import write_parquet
from regurgitate.jobs.detector import detector_scores
from regurgitate.jobs.detector import train_detector as train_detector_job


def degrade(source: str, target: str, rng: random.Random) -> str:
    """A poor generator's output: a word dropped, a word stuttered, or source words left
    untranslated."""
    words = target.split()
    kind = rng.choice(["drop", "repeat", "copy"])
    i = rng.randrange(len(words) - 1)  # never the final "."
    if kind == "drop" and len(words) > 2:
        del words[i]
    elif kind == "repeat":
        words[i + 1 : i + 1] = [words[i]] * 2
    else:
        german = source.split()
        words[i] = german[min(i, len(german) - 2)].lower()
    degraded = " ".join(words)
    # Some German words are English too ("ball"): stutter instead, so every output is wrong.
    return degraded if degraded != target else f"{words[0]} {target}"


@pytest.fixture(scope="module")
def pools(toy_pairs):
    rng = random.Random(1)
    # Unique sources only: a repeated source would sit in both the train and held-out parts.
    pairs = list(dict(toy_pairs).items())
    ids = [f"detector-{i:06d}" for i in range(len(pairs))]
    pool = pl.DataFrame(
        {"id": ids, "source": [s for s, _ in pairs], "target": [t for _, t in pairs]}
    )
    synthetic = pool.with_columns(
        target=pl.Series([degrade(s, t, rng) for s, t in pairs]), logprob=pl.lit(None)
    )[::-1]
    return pool, synthetic


def test_split_holds_out_unseen_sources_with_both_labels(pools):
    pool, synthetic = pools
    data = detector_data(pool, synthetic, "poor", held_out=0.25, seed=3)
    train, held = data["train_human"], data["held_out_human"]
    assert held.height == round(0.25 * pool.height)
    assert train.height + held.height == pool.height
    assert set(train["source"]).isdisjoint(held["source"])
    for part in ("train", "held_out"):
        human, generated = data[f"{part}_human"], data[f"{part}_generated"]
        assert human["id"].to_list() == generated["id"].to_list()
        assert human["source"].to_list() == generated["source"].to_list()
        assert (human["target"] != generated["target"]).all()
    again = detector_data(pool, synthetic, "poor", held_out=0.25, seed=3)
    assert again["held_out_human"].equals(held)
    other = detector_data(pool, synthetic, "poor", held_out=0.25, seed=4)
    assert not other["held_out_human"].equals(held)
    with pytest.raises(ValueError, match="no target for 1 detector-pool ids"):
        detector_data(pool, synthetic.head(synthetic.height - 1), "poor", 0.25, seed=3)
    with pytest.raises(ValueError, match="share between 0 and 1"):
        detector_data(pool, synthetic, "poor", held_out=1.0, seed=3)


def test_detector_tells_a_poor_generator_from_humans(pools):
    pool, synthetic = pools
    data = detector_data(pool, synthetic, "poor", held_out=0.3, seed=1)
    detector = train_detector(data["train_human"], data["train_generated"], seed=1)
    scores = evaluate_detector(detector, data["held_out_human"], data["held_out_generated"])
    assert scores["roc_auc"] > 0.8, scores
    assert scores["accuracy"] > 0.7, scores
    assert scores["n"] == 2 * data["held_out_human"].height


def test_labels_that_carry_no_signal_give_chance(pools):
    pool, synthetic = pools
    data = detector_data(pool, synthetic, "poor", held_out=0.3, seed=1)
    # Both "classes" are human translations of different sources: nothing to learn.
    train, held = data["train_human"], data["held_out_human"]
    half, held_half = train.height // 2, held.height // 2
    detector = train_detector(train.head(half), train.tail(train.height - half), seed=1)
    scores = evaluate_detector(detector, held.head(held_half), held.tail(held.height - held_half))
    assert 0.3 < scores["roc_auc"] < 0.7, scores


def test_detector_job_writes_a_detector_that_ranks_the_student_pool(tmp_path, pools):
    pool, synthetic = pools
    write_parquet(pool, tmp_path / "pool.parquet")
    write_parquet(synthetic, tmp_path / "synthetic.parquet")
    record = train_detector_job(
        pool_path=tmp_path / "pool.parquet",
        synthetic_path=tmp_path / "synthetic.parquet",
        generator="poor",
        held_out=0.3,
        seed=1,
        model_out=tmp_path / "detector.joblib",
        metrics_out=tmp_path / "metrics.json",
    )
    assert record["roc_auc"] > 0.8
    assert record["held_out_identical_share"] == 0.0
    assert (tmp_path / "metrics.json").exists()
    # The student pool here: the human and the poor targets, under ids of their own.
    student = pl.concat(
        [
            pool.with_columns(pl.format("h{}", "id").alias("id")),
            synthetic.select(pl.format("g{}", "id").alias("id"), "source", "target"),
        ]
    )
    write_parquet(student, tmp_path / "student.parquet")
    ranked = detector_scores(
        detector_path=tmp_path / "detector.joblib",
        synthetic_path=tmp_path / "student.parquet",
        out=tmp_path / "p.parquet",
    )
    assert ranked["id"].to_list() == student["id"].to_list()
    assert pl.read_parquet(tmp_path / "p.parquet").equals(ranked)
    human_first = ranked.sort("p_human", descending=True).head(pool.height)["id"]
    assert human_first.str.starts_with("h").mean() > 0.8
    # A saved detector gives the same probabilities as the trained one.
    detector = load_detector(tmp_path / "detector.joblib")
    assert detector.generator == "poor"
    np.testing.assert_allclose(
        detector.p_human(student["source"].to_list(), student["target"].to_list()),
        ranked["p_human"],
    )


def test_bad_inputs_are_refused(tmp_path, pools):
    pool, _ = pools
    with pytest.raises(ValueError, match="both classes"):
        train_detector(pool, pool.head(0), seed=1)
    (tmp_path / "x.joblib").write_bytes(b"")
    import joblib

    joblib.dump({"not": "a detector"}, tmp_path / "x.joblib")
    with pytest.raises(ValueError, match="holds a dict, not a Detector"):
        load_detector(tmp_path / "x.joblib")


SAVE_A_DETECTOR = """
import sys
import polars as pl
from regurgitate.analysis.detector import save_detector, train_detector
human = pl.read_parquet(sys.argv[1])
generated = pl.read_parquet(sys.argv[2])
save_detector(train_detector(human, generated, 1, generator="poor"), sys.argv[3])
"""


def test_a_saved_detector_is_the_same_bytes_in_every_process(tmp_path, pools):
    """Two processes (object ids differ between them) save the same detector: same bytes, and
    the file still scores as the detector did."""
    pool, synthetic = pools
    write_parquet(pool.select("source", "target"), tmp_path / "human.parquet")
    write_parquet(synthetic.select("source", "target"), tmp_path / "generated.parquet")
    for name in ("a.joblib", "b.joblib"):
        subprocess.run(
            [sys.executable, "-c", SAVE_A_DETECTOR, "human.parquet", "generated.parquet", name],
            cwd=tmp_path,
            check=True,
        )
    assert (tmp_path / "a.joblib").read_bytes() == (tmp_path / "b.joblib").read_bytes()
    trained = train_detector(pool, synthetic, 1, generator="poor")
    sources, targets = synthetic["source"].to_list(), synthetic["target"].to_list()
    np.testing.assert_array_equal(
        load_detector(tmp_path / "a.joblib").p_human(sources, targets),
        trained.p_human(sources, targets),
    )
