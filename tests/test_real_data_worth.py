import math

import numpy as np
import polars as pl
import pytest

from regurgitate.analysis.real_data_worth import real_pair_points, real_pairs_needed
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


def test_fewest_human_pairs_matching_each_full_synthetic_set():
    needed = real_pairs_needed(SUMMARY, "finetune", {"weak": "gen-weak", "strong": "self"}, 8000)
    weak, strong = needed.row(0, named=True), needed.row(1, named=True)
    # weak's 22.0 is beaten by its own 10% mix (800 human pairs), before real at 1000 (20.0)
    assert weak["real_pairs_needed"] == 800
    assert weak["matched_by"] == "partial-weak-10"
    assert weak["real_share"] == pytest.approx(0.1)
    assert weak["clearly_better"] is False  # 23 +- 1 overlaps 22 +- 1
    # strong's 29.0: real alone needs 8000 pairs, strong's own 10% mix (29.5) only 800
    assert strong["real_pairs_needed"] == 800
    assert strong["matched_by"] == "partial-strong-10"


def test_clearly_better_needs_intervals_apart():
    summary = pl.DataFrame([row("real", 1000, 20.0, half=0.5), row("gen-weak", 4000, 10.0)])
    needed = real_pairs_needed(summary, "finetune", {"weak": "gen-weak"}, 4000)
    assert needed.row(0, named=True)["clearly_better"] is True
    assert needed.row(0, named=True)["real_share"] == pytest.approx(0.25)


def test_no_match_leaves_the_count_empty():
    summary = pl.DataFrame([row("real", 1000, 10.0), row("gen-weak", 1000, 12.0)])
    needed = real_pairs_needed(summary, "finetune", {"weak": "gen-weak"}, 1000)
    assert needed["real_pairs_needed"].to_list() == [None]
    assert needed["matched_by"].to_list() == [None]


def test_a_missing_full_set_is_named():
    with pytest.raises(ValueError, match="no summary row for gen-other at size 8000"):
        real_pairs_needed(SUMMARY, "finetune", {"other": "gen-other"}, 8000)
