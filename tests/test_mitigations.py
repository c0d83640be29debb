import json
import math

import polars as pl
import pytest
from scipy import stats

from regurgitate.analysis.aggregate import RUN_SCHEMA, summarise
from regurgitate.analysis.mitigations import (
    Mitigation,
    gap_closed,
    mitigation_of,
    mitigations_table,
)
from regurgitate.analysis.significance import ONE_SEED_NOTE
from regurgitate.jobs.mitigate import table_mitigations
from regurgitate.plots.mitigations import (
    gap_closed_figure,
    plot_gap_closed,
    strategy_conditions,
    strategy_curves,
)


def runs(bleu: dict[str, list[float]], sizes=(1000, 2000), experiment="scratch") -> pl.DataFrame:
    """Per-run rows: bleu[condition][i] is the score at seed i + 1, the same at every size
    plus the size in thousands (so sizes differ but gaps do not)."""
    rows = [
        {
            "experiment": experiment,
            "condition": condition,
            "size": size,
            "seed": seed,
            "bleu": score + size / 1000,
            "chrf": 50.0,
            "bleu_signature": "sig",
            "chrf_signature": "sig",
        }
        for condition, scores in bleu.items()
        for seed, score in enumerate(scores, start=1)
        for size in sizes
    ]
    return pl.DataFrame(rows, schema=RUN_SCHEMA)


def test_half_the_gap_closed():
    table = gap_closed(
        runs(
            {
                "real": [30, 32, 31],
                "gen-weak": [20, 21, 22],
                "ordered-weak-oracle": [25, 26.5, 26.5],
            }
        ),
        "real",
        "gen-weak",
        "ordered-weak-oracle",
    )
    assert table["size"].to_list() == [1000, 2000]
    assert table["gap_closed_mean"].to_list() == pytest.approx([0.5, 0.5])
    # Exactly half at every seed: the interval has no width.
    assert table["gap_closed_ci_low"].to_list() == pytest.approx([0.5, 0.5])
    assert table["gap_closed_ci_high"].to_list() == pytest.approx([0.5, 0.5])
    assert table["gap"].to_list() == pytest.approx([10.0, 10.0])
    assert table["gap_seeds"].to_list() == [3, 3]


def test_interval_by_hand():
    # d_r = (10, 10), d_m = (4, 6): R = 0.5, residuals (-1, 1), sd sqrt(2).
    table = gap_closed(
        runs({"real": [30, 30], "gen-weak": [20, 20], "detector-weak": [24, 26]}, sizes=(1000,)),
        "real",
        "gen-weak",
        "detector-weak",
    )
    half = stats.t.ppf(0.975, 1) * math.sqrt(2) / math.sqrt(2) / 10
    assert table["gap_closed_mean"][0] == pytest.approx(0.5)
    assert table["gap_closed_ci_low"][0] == pytest.approx(0.5 - half)
    assert table["gap_closed_ci_high"][0] == pytest.approx(0.5 + half)


def test_fieller_interval_by_hand():
    # d_r = (8, 10, 12), d_m = (4, 6, 5): R = 5 / 10. Fieller's bounds are the R at which the
    # paired t-statistic of d_m - R d_r is exactly +-t(0.975, 2).
    table = gap_closed(
        runs({"real": [28, 30, 32], "gen-weak": [20] * 3, "detector-weak": [24, 26, 25]}),
        "real",
        "gen-weak",
        "detector-weak",
    )
    low, high = table["gap_closed_ci_low"][0], table["gap_closed_ci_high"][0]
    assert table["gap_closed_mean"][0] == pytest.approx(0.5)
    assert (low, high) == pytest.approx((0.28420, 0.87966), abs=1e-5)
    d_r, d_m = [8, 10, 12], [4, 6, 5]
    t = stats.t.ppf(0.975, 2)
    for bound, sign in ((low, 1), (high, -1)):
        residual = [m - bound * r for m, r in zip(d_m, d_r, strict=True)]
        mean = sum(residual) / 3
        sd = math.sqrt(sum((x - mean) ** 2 for x in residual) / 2)
        assert mean / (sd / math.sqrt(3)) == pytest.approx(sign * t)


def test_a_gap_within_noise_has_no_bounded_interval():
    table = gap_closed(
        runs({"real": [30, 21, 31], "gen-weak": [20] * 3, "detector-weak": [25, 20, 25]}),
        "real",
        "gen-weak",
        "detector-weak",
    )
    assert table["gap_closed_mean"][0] is not None
    assert table["gap_closed_ci_low"][0] is None and table["gap_closed_ci_high"][0] is None


def test_mixes_are_measured_against_the_mean_of_their_generators():
    data = runs({"real": [30], "gen-a": [20], "gen-b": [24], "mixed-a+b": [26]})
    table = gap_closed(data, "real", ["gen-a", "gen-b"], "mixed-a+b")
    # Baseline 22, gap 8, closed 4.
    assert table["unmitigated_bleu"][0] == pytest.approx(23.0)  # 22 + size 1000
    assert table["gap_closed_mean"].to_list() == pytest.approx([0.5, 0.5])
    # One seed: an estimate without an interval.
    assert table["gap_closed_ci_low"].to_list() == [None, None]


def test_no_gap_gives_no_share():
    table = gap_closed(
        runs({"real": [30, 30], "gen-strong": [29.8, 29.9], "ordered-strong-x": [31, 31]}),
        "real",
        "gen-strong",
        "ordered-strong-x",
    )
    assert table["gap"].to_list() == pytest.approx([0.15, 0.15])
    assert table["gap_closed_mean"].to_list() == [None, None]
    assert gap_closed(
        runs({"real": [30, 30], "gen-strong": [29.8, 29.9], "ordered-strong-x": [31, 31]}),
        "real",
        "gen-strong",
        "ordered-strong-x",
        min_gap=0.1,
    )["gap_closed_mean"][0] == pytest.approx(1.15 / 0.15)


def test_only_common_seeds_are_paired():
    data = runs({"real": [30, 30, 99], "gen-weak": [20, 20, 0], "detector-weak": [25, 25]})
    with pytest.warns(UserWarning, match="4 runs .* no partner at the same seed"):
        table = gap_closed(data, "real", "gen-weak", "detector-weak")
    assert table["gap_seeds"].to_list() == [2, 2]
    assert table["gap_closed_mean"].to_list() == pytest.approx([0.5, 0.5])
    disjoint = pl.concat(
        [
            runs({"real": [30], "gen-weak": [20]}),
            runs({"detector-weak": [0, 25]}).filter(pl.col("seed") == 2),
        ]
    )
    with pytest.warns(UserWarning):
        table = gap_closed(disjoint, "real", "gen-weak", "detector-weak")
    assert table["gap_seeds"].to_list() == [0, 0]
    assert table["gap_closed_mean"].to_list() == [None, None]
    with pytest.raises(ValueError, match=r"no runs of the conditions \['gen-strong'\]"):
        gap_closed(data, "real", "gen-strong", "detector-weak")


def test_condition_ids_name_their_mitigation():
    assert mitigation_of("ordered-weak-consensus") == Mitigation(
        "S1", "weak", "ordered-weak-consensus", ("gen-weak",)
    )
    assert mitigation_of("mixed-a+b") == Mitigation("S2", "a+b", "mixed-a+b", ("gen-a", "gen-b"))
    assert mitigation_of("detector-weak").strategy == "S3"
    assert mitigation_of("gen-weak") is None
    assert mitigation_of("partial-weak-50") is None


def test_table_has_a_row_per_mitigation_experiment_and_size(tmp_path):
    data = runs(
        {
            "real": [30, 32],
            "self": [10, 10],
            "gen-a": [20, 22],
            "gen-b": [24, 26],
            "ordered-a-oracle": [25, 27],
            "detector-a": [20, 22],
            "mixed-a+b": [26, 28],
        }
    )
    table = mitigations_table(data)
    assert table["condition"].to_list() == [
        "ordered-a-oracle",
        "ordered-a-oracle",
        *["mixed-a+b"] * 4,
        "detector-a",
        "detector-a",
    ]
    assert table["strategy"].to_list() == ["S1", "S1", *["S2"] * 4, "S3", "S3"]
    # A mix against the best of its generators (gen-b) and against their mean.
    assert table["baseline"].to_list() == [
        "gen-a",
        "gen-a",
        "best: gen-b",
        "best: gen-b",
        "mean(gen-a, gen-b)",
        "mean(gen-a, gen-b)",
        "gen-a",
        "gen-a",
    ]
    first = table.row(0, named=True)
    assert first["generator"] == "a"
    assert first["bleu_mean"] == pytest.approx(27.0)
    assert first["n_seeds"] == 2
    assert first["bleu_ci_low"] == pytest.approx(
        27 - stats.t.ppf(0.975, 1) * math.sqrt(2) / math.sqrt(2)
    )
    shares = [0.5, 0.5, 1 / 3, 1 / 3, 0.5, 0.5, 0.0, 0.0]
    assert table["gap_closed_mean"].to_list() == pytest.approx(shares)

    paths = []
    for i, row in enumerate(data.iter_rows(named=True)):
        path = tmp_path / f"{i}.json"
        path.write_text(pl.DataFrame([row]).write_json()[1:-1])
        paths.append(path)
    # A mix whose targets were too few tokens to measure has no diversity values.
    unmeasured = tmp_path / "mixed-a+b.json"
    unmeasured.write_text('{"diversity": null}')
    # Generator b did not learn to translate: every row built on its output says so.
    generators = tmp_path / "generators.csv"
    pl.DataFrame({"generator": ["a", "b"], "generator_learned": [True, False]}).write_csv(
        generators
    )
    written = table_mitigations(
        run_paths=paths,
        unmitigated={},
        mix_mechanisms={"mixed-a+b": str(unmeasured)},
        min_gap=0.5,
        out=tmp_path / "tables" / "mitigations.csv",
        generators_table=generators,
    )
    assert written.select(table.columns).equals(table)
    csv = pl.read_csv(tmp_path / "tables" / "mitigations.csv")
    diversity = ["ttr", "mtld", "mtld_ci_low", "mtld_ci_high"]
    assert csv.columns == [*table.columns, *diversity, "generator_learned"]
    learned = dict(zip(csv["condition"], csv["generator_learned"], strict=True))
    assert learned == {"detector-a": True, "ordered-a-oracle": True, "mixed-a+b": False}
    assert csv["gap_closed_mean"].to_list() == [round(x, 2) for x in shares]
    mix = csv.filter(pl.col("condition") == "mixed-a+b")
    assert mix.height == 4 and mix["mtld"].null_count() == 4 and mix["ttr"].null_count() == 4


def test_the_share_is_reported_only_where_the_gap_is_significant():
    data = runs({"real": [30, 32], "gen-a": [20, 22], "gen-b": [24, 26], "mixed-a+b": [26, 28]})
    data = pl.concat([data, runs({"detector-a": [25, 27]})])
    significant = pl.DataFrame(
        {
            "experiment": ["scratch"] * 4,
            "condition": ["gen-a", "gen-a", "gen-b", "gen-b"],
            "size": [1000, 2000, 1000, 2000],
            "significant": [True, False, True, True],
        }
    )
    table = mitigations_table(data, significant=significant)
    rows = {(r["condition"], r["baseline"], r["size"]): r for r in table.iter_rows(named=True)}
    assert rows[("detector-a", "gen-a", 1000)]["gap_closed_mean"] == pytest.approx(0.5)
    gated = rows[("detector-a", "gen-a", 2000)]
    assert gated["gap_closed_mean"] is None and gated["gap_note"] == "no significant gap"
    assert gated["gap"] == pytest.approx(10.0)  # the gap itself stays in the table
    # The mean of a mix's generators needs every one of them to differ from real.
    assert rows[("mixed-a+b", "mean(gen-a, gen-b)", 2000)]["gap_closed_mean"] is None
    assert rows[("mixed-a+b", "best: gen-b", 2000)]["gap_closed_mean"] == pytest.approx(1 / 3)
    assert rows[("mixed-a+b", "best: gen-b", 2000)]["gap_note"] is None
    (ax,) = plot_gap_closed(table).axes
    labels = [label.get_text() for label in ax.get_yticklabels()]
    assert "S2 mixed: a + b\nvs best: gen-b" in labels
    assert "S2 mixed: a + b\nvs mean(gen-a, gen-b)" in labels
    assert sum(text.get_text() == "no significant gap" for text in ax.texts) == 2


def test_a_share_far_off_scale_is_written_out_not_drawn_to_scale():
    """A mix measured against a component with a tiny gap can have a share of -29 [-347, -11];
    the axis keeps the other rows readable and the far share is written beside its arrow."""
    share = {"experiment": "finetune", "strategy": "S1", "size": 2000}
    table = pl.DataFrame(
        [
            share
            | {"condition": "ordered-a-oracle", "gap_closed_mean": 0.1}
            | {"gap_closed_ci_low": 0.0, "gap_closed_ci_high": 0.2, "baseline": "gen-a"},
            share
            | {"condition": "ordered-a-confidence", "gap_closed_mean": 0.3}
            | {"gap_closed_ci_low": -5.0, "gap_closed_ci_high": 0.6, "baseline": "gen-a"},
            share
            | {"strategy": "S2", "condition": "mixed-a+b", "gap_closed_mean": -28.79}
            | {
                "gap_closed_ci_low": -347.19,
                "gap_closed_ci_high": -11.24,
                "baseline": "best: gen-b",
            },
        ]
    )
    (ax,) = plot_gap_closed(table).axes
    left, right = ax.get_xlim()
    assert -2.5 < left < 0 and 1 < right < 1.5
    assert "-28.8 [-347.2, -11.2]" in [text.get_text() for text in ax.texts]
    dots = {line.get_label(): line for line in ax.get_lines() if line.get_label()[0] != "_"}
    assert dots["ordered-a-confidence"].get_xdata()[0] == pytest.approx(0.3)


def test_table_without_mitigations_is_empty():
    assert mitigations_table(runs({"real": [30], "gen-a": [20]})).height == 0


def test_strategy_figures_show_real_unmitigated_and_mitigated(tmp_path):
    data = runs(
        {
            "real": [30, 32],
            "self": [10, 10],
            "gen-a": [20, 22],
            "gen-b": [24, 26],
            "ordered-a-oracle": [25, 27],
            "ordered-a-confidence": [21, 23],
            "mixed-a+b": [26, 28],
            "detector-a": [20, 22],
        }
    )
    summary = summarise(data)
    assert strategy_conditions(summary["condition"].to_list(), "S1") == [
        "gen-a",
        "ordered-a-confidence",
        "ordered-a-oracle",
        "real",
    ]
    assert strategy_conditions(summary["condition"].to_list(), "S2") == [
        "gen-a",
        "gen-b",
        "mixed-a+b",
        "real",
    ]
    with pytest.raises(ValueError, match="no conditions of strategy S3"):
        strategy_conditions(["real", "gen-a"], "S3")
    strategy_curves(summary, "S1", tmp_path / "s1.png", tmp_path / "s1.pdf")
    assert (tmp_path / "s1.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "s1.pdf").read_bytes().startswith(b"%PDF")


def test_gap_closed_figure_has_a_dot_and_interval_per_condition(tmp_path):
    data = runs(
        {
            "real": [30, 32],
            "gen-a": [20, 22],
            "gen-strong": [29.9, 31.9],
            "ordered-a-oracle": [25, 28],
            "detector-a": [20, 22],
            "ordered-strong-oracle": [30, 32],
        }
    )
    with pytest.warns(UserWarning, match="no partner"):
        table = mitigations_table(pl.concat([data, runs({"real": [0, 0, 50]}, sizes=(3000,))]))
    figure = plot_gap_closed(table)
    (ax,) = figure.axes
    dots = {line.get_label(): line for line in ax.get_lines() if line.get_label()[0] != "_"}
    assert sorted(dots) == ["detector-a", "ordered-a-oracle"]
    assert dots["ordered-a-oracle"].get_xdata()[0] == pytest.approx(
        table.filter((pl.col("condition") == "ordered-a-oracle") & (pl.col("size") == 2000))[
            "gap_closed_mean"
        ][0]
    )
    # The largest size of the experiment is shown; strong has no gap to close.
    assert "2,000 pairs" in ax.get_title()
    assert any(text.get_text() == "gap below min_gap" for text in ax.texts)
    labels = [label.get_text() for label in ax.get_yticklabels()]
    # The oracle orders are upper bounds, listed apart below the deployable strategies.
    assert labels == [
        "S3 ranked by detector (a)",
        "S1 ordered by oracle (a)\n(upper bound)",
        "S1 ordered by oracle (strong)\n(upper bound)",
    ]
    gap_closed_figure(table, tmp_path / "gap.png", tmp_path / "gap.pdf")
    assert (tmp_path / "gap.png").read_bytes().startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="empty"):
        plot_gap_closed(table.head(0))


def test_source_selection_is_measured_apart_and_the_oracle_is_not_deployable():
    data = runs(
        {
            "real": [30, 32],
            "gen-a": [20, 22],
            "ordered-a-oracle": [25, 27],
            "ordered-a-confidence": [22, 24],
            # The oracle's sources with human targets: 3 BLEU above real on both seeds.
            "sources-ordered-a-oracle": [33, 35],
        }
    )
    table = mitigations_table(data)
    rows = {(r["condition"], r["size"]): r for r in table.iter_rows(named=True)}
    oracle = rows[("ordered-a-oracle", 1000)]
    assert oracle["selection_effect_mean"] == pytest.approx(3.0)
    assert oracle["selection_effect_ci_low"] == pytest.approx(3.0)
    assert oracle["deployable"] is False
    confidence = rows[("ordered-a-confidence", 1000)]
    assert confidence["deployable"] is True and confidence["selection_effect_mean"] is None
    assert ("sources-ordered-a-oracle", 1000) not in rows  # a control, not a mitigation


def test_a_gap_untested_for_want_of_seeds_has_no_share(tmp_path):
    # One seed: the experiment table leaves `significant` empty, and its CSV gives the column
    # no type to infer.
    data = runs({"real": [30], "gen-a": [20], "gen-b": [26], "detector-a": [25]})
    experiment_table = pl.DataFrame(
        {
            "experiment": ["scratch"] * 4,
            "condition": ["gen-a", "gen-a", "gen-b", "gen-b"],
            "size": [1000, 2000, 1000, 2000],
            "significant": [None, None, False, None],
        },
        schema_overrides={"significant": pl.Boolean},
    )
    table = mitigations_table(data, significant=experiment_table)
    (row,) = table.filter(pl.col("size") == 1000).iter_rows(named=True)
    assert row["gap_closed_mean"] is None and row["gap_significant"] is None
    assert row["gap_note"] == ONE_SEED_NOTE
    assert row["gap"] == pytest.approx(10.0)
    path = tmp_path / "scratch.csv"
    experiment_table.filter(pl.col("condition") == "gen-a").write_csv(path)
    assert pl.read_csv(path)["significant"].dtype == pl.String  # what table_mitigations reads
    generators = tmp_path / "generators.csv"
    pl.DataFrame({"generator": ["a", "b"], "generator_learned": [True, True]}).write_csv(generators)
    paths = []
    for i, row in enumerate(data.iter_rows(named=True)):
        paths.append(tmp_path / f"run{i}.json")
        paths[-1].write_text(json.dumps(row))
    written = table_mitigations(
        run_paths=paths,
        unmitigated={},
        mix_mechanisms={},
        min_gap=1.0,
        out=tmp_path / "mitigations.csv",
        generators_table=generators,
        experiment_tables=[path],
    )
    assert set(written["gap_note"]) == {ONE_SEED_NOTE}


def test_strategy_figures_keep_the_experiment_figures_styles(tmp_path, monkeypatch):
    import regurgitate.plots.learning_curves as curves
    from regurgitate.plots.learning_curves import plot_learning_curves

    figures = []
    monkeypatch.setattr(curves, "save_figure", lambda figure, png, pdf: figures.append(figure))
    data = runs({"real": [30, 32], "gen-a": [20, 22], "gen-b": [25, 27], "self": [29, 31]})
    data = pl.concat([data, runs({"detector-a": [21, 23]})])
    summary = summarise(data)
    strategy_curves(summary, "S3", tmp_path / "s3.png", tmp_path / "s3.pdf")
    experiment = plot_learning_curves(
        summary.filter(pl.col("condition").is_in(["real", "gen-a", "gen-b", "self"])), title="E"
    )
    colours = [
        {line.get_gid(): line.get_color() for line in f.axes[0].get_lines() if line.get_gid()}
        for f in (figures[0], experiment)
    ]
    assert colours[0]["gen-a"] == colours[1]["gen-a"]
    assert colours[0]["detector-a"] not in {colours[1]["gen-a"], colours[0]["real"]}
