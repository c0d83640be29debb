import math
import random

import numpy as np
import polars as pl
import pytest

from regurgitate.analysis.real_data_worth import (
    BELOW,
    BEYOND,
    INTERPOLATED,
    crossing,
    partial_rows,
    real_pair_points,
    real_pairs_worth,
)
from regurgitate.study.curricula import human_pairs, human_rows


@pytest.mark.parametrize(
    ("size", "percent", "pairs"),
    [(8000, 10, 800), (300, 25, 75), (7, 50, 3), (1000, 33, 330), (10, 33, 3), (1, 99, 0)],
)
def test_real_pairs_of_a_prefix_by_hand(size, percent, pairs):
    assert human_pairs(size, percent) == pairs


def test_the_human_rows_of_a_partial_curriculum_by_hand():
    # floor(k / 4) human rows among the first k: the 4th and the 8th row.
    assert human_rows(8, 25).tolist() == [False, False, False, True, False, False, False, True]
    # floor(k * 33 / 100): 1 at k = 4, 2 at k = 7, 3 at k = 10.
    assert np.flatnonzero(human_rows(10, 33)).tolist() == [3, 6, 9]


@pytest.mark.parametrize("percent", [1, 10, 25, 33, 50, 99])
def test_every_prefix_holds_the_real_pairs_that_its_size_is_credited_with(percent):
    rows = human_rows(500, percent).tolist()
    counted = 0
    for k, is_human in enumerate(rows, start=1):
        counted += is_human
        assert counted == math.floor(k * percent / 100), k
        assert human_pairs(k, percent) == counted, k


def row(condition, size, mean, half=1.0):
    return {
        "experiment": "finetune",
        "condition": condition,
        "size": size,
        "bleu_mean": mean,
        "bleu_ci_low": mean - half,
        "bleu_ci_high": mean + half,
    }


SUMMARY = pl.DataFrame(
    [
        row("real", 1000, 20.0),
        row("real", 2000, 24.0),
        row("real", 8000, 30.0),
        row("gen-weak", 8000, 22.0),
        row("self", 8000, 29.0),
        row("partial-weak-10", 8000, 23.0),  # 800 human pairs
        row("partial-weak-25", 8000, 26.0),  # 2000 human pairs
        row("partial-strong-10", 8000, 29.5),  # another generator's mix: not weak's
        row("real", 8000, 99.0) | {"experiment": "scratch"},  # another experiment
    ]
)


def test_points_carry_the_human_pairs_of_each_run():
    points = real_pair_points(SUMMARY.filter(pl.col("experiment") == "finetune"))
    by_condition = {(r["condition"], r["size"]): r for r in points.iter_rows(named=True)}
    assert by_condition[("real", 2000)]["real_pairs"] == 2000
    assert by_condition[("partial-weak-10", 8000)]["real_pairs"] == 800
    assert by_condition[("partial-weak-10", 8000)]["generator"] == "weak"
    assert by_condition[("partial-strong-10", 8000)]["percent"] == 10
    assert ("gen-weak", 8000) not in by_condition


def test_crossing_is_interpolated_on_the_real_curve():
    sizes, curve = np.array([1000, 2000, 4000]), np.array([10.0, 20.0, 30.0])
    assert crossing(sizes, curve, 25.0) == (3000.0, INTERPOLATED)
    assert crossing(sizes, curve, 20.0) == (2000.0, INTERPOLATED)
    assert crossing(sizes, curve, 12.5) == (1250.0, INTERPOLATED)
    assert crossing(sizes, curve, 10.0) == (-np.inf, BELOW)
    assert crossing(sizes, curve, 31.0) == (np.inf, BEYOND)
    # The first crossing from below counts, in size order whatever the input order.
    wobbly = np.array([10.0, 26.0, 24.0, 30.0])
    assert crossing(np.array([1000, 2000, 3000, 4000]), wobbly, 25.0) == (
        pytest.approx(1000 + 1000 * 15 / 16),
        INTERPOLATED,
    )
    assert crossing(sizes[::-1], curve[::-1], 25.0) == (3000.0, INTERPOLATED)


WORDS = "the a cat dog sat on mat red blue big small house tree runs jumps over".split()  # noqa: SIM905


def _translations(keep: float, seed: int, refs: list[str]) -> list[str]:
    rng = random.Random(seed)
    return [
        " ".join(w if rng.random() < keep else rng.choice(WORDS) for w in r.split()) for r in refs
    ]


def _references(n: int = 150) -> list[str]:
    rng = random.Random(0)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 12))) for _ in range(n)]


def test_real_pairs_worth_with_its_interval():
    refs = _references()
    # real improves with size; the synthetic set sits between 2,000 and 4,000 pairs.
    real = {
        size: {seed: _translations(keep, 10 * seed + i, refs) for seed in (1, 2, 3)}
        for i, (size, keep) in enumerate(((1000, 0.4), (2000, 0.6), (4000, 0.9)))
    }
    synthetic = {seed: _translations(0.75, 100 + seed, refs) for seed in (1, 2, 3)}
    worth = real_pairs_worth(refs, real, synthetic, resamples=200)
    assert worth["worth_note"] == INTERPOLATED and 2000 < worth["real_pairs_worth"] < 4000
    assert worth["real_pairs_worth_low"] < worth["real_pairs_worth"]
    assert worth["real_pairs_worth"] < worth["real_pairs_worth_high"]
    assert worth["real_pairs_worth_low"] >= 2000 and worth["real_pairs_worth_high"] <= 4000
    assert worth["paired_seeds"] == 3
    # A synthetic set better than every real size lies beyond the grid, with an open interval.
    perfect = {seed: refs for seed in (1, 2, 3)}
    beyond = real_pairs_worth(refs, real, perfect, resamples=50)
    assert beyond["real_pairs_worth"] is None and beyond["worth_note"] == BEYOND
    assert beyond["real_pairs_worth_high"] is None and beyond["high_note"] == BEYOND
    worse = {seed: _translations(0.1, seed, refs) for seed in (1, 2, 3)}
    below = real_pairs_worth(refs, real, worse, resamples=50)
    assert below["worth_note"] == BELOW and below["low_note"] == BELOW


def test_partial_mixes_are_tested_against_the_full_set_at_their_size():
    refs = _references()
    full = {8000: {seed: _translations(0.5, seed, refs) for seed in (1, 2)}}
    partial = {
        ("partial-weak-25", 8000): {seed: _translations(0.9, 50 + seed, refs) for seed in (1, 2)},
        ("partial-weak-10", 2000): {1: refs},  # no full set at 2,000: no row
    }
    (row,) = partial_rows(refs, partial, full, resamples=200)
    assert row["condition"] == "partial-weak-25" and row["human_pairs"] == 2000
    assert row["human_share"] == 0.25
    assert row["bleu_delta"] > 0 and row["bleu_delta_low"] > 0 and row["significant"]
    assert row["paired_seeds"] == 2
