import json
import math

import polars as pl
import pytest

from regurgitate.analysis.aggregate import load_runs, summarise
from regurgitate.io import write_table

BLEU_SIG = "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0"
CHRF_SIG = "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0"
T_975_DF2 = 4.302652729911275  # scipy.stats.t.ppf(0.975, 2), also in any t table as 4.303


def run(condition="real", size=1000, seed=1, bleu=10.0, chrf=40.0, experiment="e2", **extra):
    return {
        "experiment": experiment,
        "condition": condition,
        "size": size,
        "seed": seed,
        "bleu": bleu,
        "chrf": chrf,
        "bleu_signature": BLEU_SIG,
        "chrf_signature": CHRF_SIG,
        **extra,
    }


def write_runs(tmp_path, runs):
    paths = []
    for i, data in enumerate(runs):
        path = tmp_path / f"run{i}.json"
        path.write_text(json.dumps(data))
        paths.append(path)
    return paths


def test_load_runs_one_row_per_run(tmp_path):
    paths = write_runs(tmp_path, [run(seed=1, n_sentences=100), run(seed=2, bleu=12)])
    runs = load_runs(paths)
    assert runs.height == 2
    assert runs.columns == [
        "experiment",
        "condition",
        "size",
        "seed",
        "bleu",
        "chrf",
        "bleu_signature",
        "chrf_signature",
    ]
    assert runs["bleu"].to_list() == [10.0, 12.0]  # an integer score is read as a float
    assert runs.schema["size"] == pl.Int64


def test_load_runs_missing_key_names_file_and_key(tmp_path):
    data = run()
    del data["chrf"]
    (path,) = write_runs(tmp_path, [data])
    with pytest.raises(ValueError, match=r"run0\.json.*'chrf'"):
        load_runs([path])


def test_load_runs_rejects_wrong_type(tmp_path):
    (path,) = write_runs(tmp_path, [run(size=1.5)])
    with pytest.raises(ValueError, match=r"run0\.json.*'size'.*integer"):
        load_runs([path])


def test_load_runs_rejects_broken_json(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"broken\.json"):
        load_runs([path])


def test_load_runs_rejects_duplicate_run(tmp_path):
    paths = write_runs(tmp_path, [run(seed=1), run(seed=1, bleu=11)])
    with pytest.raises(ValueError, match="condition=real, size=1000, seed=1"):
        load_runs(paths)


def test_load_runs_empty_list_has_schema():
    runs = load_runs([])
    assert runs.height == 0
    assert "bleu_signature" in runs.columns


def test_three_seeds_mean_sd_and_interval(tmp_path):
    runs = load_runs(
        write_runs(tmp_path, [run(seed=s, bleu=b) for s, b in [(1, 10), (2, 12), (3, 14)]])
    )
    row = summarise(runs).row(0, named=True)
    half = T_975_DF2 * 2 / math.sqrt(3)
    assert half == pytest.approx(4.968, abs=1e-3)
    assert row["n_seeds"] == 3
    assert row["bleu_mean"] == pytest.approx(12.0)
    assert row["bleu_sd"] == pytest.approx(2.0)
    assert row["bleu_ci_low"] == pytest.approx(12.0 - half)
    assert row["bleu_ci_high"] == pytest.approx(12.0 + half)
    assert row["chrf_mean"] == pytest.approx(40.0)
    assert row["chrf_sd"] == pytest.approx(0.0)
    assert row["bleu_signature"] == BLEU_SIG
    assert row["chrf_signature"] == CHRF_SIG


def test_single_seed_has_null_interval(tmp_path):
    runs = load_runs(write_runs(tmp_path, [run(bleu=21.5)]))
    row = summarise(runs).row(0, named=True)
    assert row["n_seeds"] == 1
    assert row["bleu_mean"] == pytest.approx(21.5)
    for column in ("bleu_sd", "bleu_ci_low", "bleu_ci_high", "chrf_sd", "chrf_ci_low"):
        assert row[column] is None


def test_groups_by_condition_and_size_sorted(tmp_path):
    data = [
        run("self", 2000, 1, 8.0),
        run("real", 2000, 1, 20.0),
        run("real", 1000, 1, 14.0),
        run("real", 1000, 2, 16.0),
        run("gen-weak", 1000, 1, 5.0),
        run("self", 2000, 2, 10.0),
    ]
    summary = summarise(load_runs(write_runs(tmp_path, data)))
    assert summary.select("condition", "size", "n_seeds").rows() == [
        ("gen-weak", 1000, 1),
        ("real", 1000, 2),
        ("real", 2000, 1),
        ("self", 2000, 2),
    ]
    assert summary["bleu_mean"].to_list() == pytest.approx([5.0, 15.0, 20.0, 9.0])
    assert summary.columns[:8] == [
        "experiment",
        "condition",
        "size",
        "n_seeds",
        "bleu_mean",
        "bleu_sd",
        "bleu_ci_low",
        "bleu_ci_high",
    ]


def test_experiments_are_kept_apart(tmp_path):
    data = [run(experiment="e1", bleu=30.0), run(experiment="e2", bleu=10.0)]
    summary = summarise(load_runs(write_runs(tmp_path, data)))
    assert summary.select("experiment", "n_seeds").rows() == [("e1", 1), ("e2", 1)]


def test_summarise_selected_metric_and_missing_metric():
    runs = pl.DataFrame({"experiment": ["e"], "condition": ["real"], "size": [1], "bleu": [1.0]})
    summary = summarise(runs, metrics=("bleu",))
    assert "chrf_mean" not in summary.columns
    assert "bleu_signature" not in summary.columns  # only kept where the runs carry it
    with pytest.raises(ValueError, match="chrf"):
        summarise(runs)


def test_mixed_signatures_warn(tmp_path):
    data = [run(seed=1), {**run(seed=2), "bleu_signature": BLEU_SIG.replace("2.6.0", "2.4.0")}]
    runs = load_runs(write_runs(tmp_path, data))
    with pytest.warns(UserWarning, match="bleu_signature"):
        summary = summarise(runs)
    assert summary["bleu_signature"].to_list() == [BLEU_SIG]


def test_write_table_csv_roundtrip(tmp_path):
    data = [run(seed=s, bleu=b) for s, b in [(1, 10.123), (2, 12.0), (3, 14.0)]]
    data.append(run("self", seed=1, bleu=7.0))
    summary = summarise(load_runs(write_runs(tmp_path, data)))
    path = tmp_path / "tables" / "e2.csv"
    write_table(summary, path)
    assert [p.name for p in path.parent.iterdir()] == ["e2.csv"]  # no temporary left behind
    text = path.read_text()
    assert "12.04" in text  # mean of 10.123, 12, 14 rounded to 2 decimals
    back = pl.read_csv(path)
    assert back.columns == summary.columns
    assert back.height == summary.height
    assert back["bleu_mean"].to_list() == pytest.approx(summary["bleu_mean"].round(2).to_list())
    assert back["bleu_ci_low"].to_list()[1] is None  # the single seed's interval stays empty
    assert back["bleu_signature"].to_list() == [BLEU_SIG, BLEU_SIG]


# --- differences between conditions, paired by seed --------------------------------------------


def runs_frame(rows):
    return pl.DataFrame([run(**row) for row in rows])


def test_paired_difference_pairs_seeds_and_gives_a_t_interval():
    from regurgitate.analysis.aggregate import paired_difference

    runs = runs_frame(
        [
            {"condition": "real", "seed": 1, "bleu": 20.0},
            {"condition": "real", "seed": 2, "bleu": 22.0},
            {"condition": "real", "seed": 3, "bleu": 24.0},
            {"condition": "gen-weak", "seed": 3, "bleu": 21.0},  # order must not matter
            {"condition": "gen-weak", "seed": 1, "bleu": 19.0},
            {"condition": "gen-weak", "seed": 2, "bleu": 20.0},
            {"condition": "gen-weak", "seed": 2, "bleu": 0.0, "size": 2000},  # another size
        ]
    )
    loss = paired_difference(runs, "e2", 1000, "real", "gen-weak")
    # per-seed differences 1, 2, 3: mean 2, sd 1
    assert loss["mean"] == pytest.approx(2.0)
    assert loss["n"] == 3
    assert loss["ci_high"] - loss["mean"] == pytest.approx(T_975_DF2 / math.sqrt(3))


def test_paired_difference_names_what_is_missing():
    from regurgitate.analysis.aggregate import paired_difference

    runs = runs_frame([{"condition": "real", "seed": 1}, {"condition": "gen-weak", "seed": 2}])
    with pytest.raises(ValueError, match="no e2 runs of self at size 1000"):
        paired_difference(runs, "e2", 1000, "real", "self")
    with pytest.raises(ValueError, match="share no seed"):
        paired_difference(runs, "e2", 1000, "real", "gen-weak")


def test_bleu_losses_one_row_per_generator():
    from regurgitate.analysis.aggregate import bleu_losses

    runs = runs_frame(
        [
            {"condition": "real", "seed": 1, "bleu": 20.0},
            {"condition": "self", "seed": 1, "bleu": 18.5},
            {"condition": "gen-weak", "seed": 1, "bleu": 12.0},
        ]
    )
    losses = bleu_losses(runs, "e2", 1000, {"strong": "self", "weak": "gen-weak"})
    assert losses["generator"].to_list() == ["strong", "weak"]
    assert losses["loss_mean"].to_list() == [1.5, 8.0]
    assert losses["loss_ci_low"].is_null().all()  # one seed: no interval
