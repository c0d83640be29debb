import polars as pl
import pytest
from matplotlib.lines import Line2D

from regurgitate.plots.learning_curves import (
    NOT_LEARNED_LABEL,
    NOT_SIGNIFICANT_LABEL,
    SIGNIFICANT_LABEL,
    UNTESTED_LABEL,
    learning_curves,
    plot_learning_curves,
)
from regurgitate.plots.style import REAL_COLOUR, condition_styles
from regurgitate.study.vocabulary import condition_title

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def summary_table(conditions=("real", "self", "gen-weak"), sizes=(1000, 2000, 4000)):
    rows = []
    for i, condition in enumerate(conditions):
        for j, size in enumerate(sizes):
            mean = 10.0 + 3 * j - 2 * i
            rows.append(
                {
                    "experiment": "e2",
                    "condition": condition,
                    "size": size,
                    "n_seeds": 3,
                    "bleu_mean": mean,
                    "bleu_sd": 1.0,
                    "bleu_ci_low": mean - 2.5,
                    "bleu_ci_high": mean + 2.5,
                    "chrf_mean": 3 * mean,
                    "chrf_sd": 1.0,
                    "chrf_ci_low": 3 * mean - 2.5,
                    "chrf_ci_high": 3 * mean + 2.5,
                }
            )
    return pl.DataFrame(rows)


def condition_lines(figure, conditions):
    """The curves of `conditions`, found by their ids (each line's gid; the label is a title)."""
    (ax,) = figure.axes
    return [line for line in ax.get_lines() if line.get_gid() in conditions]


def test_writes_png_and_pdf(tmp_path):
    png, pdf = tmp_path / "fig" / "e2.png", tmp_path / "fig" / "e2.pdf"
    learning_curves(summary_table(), png, pdf, title="E2: students from scratch")
    assert png.read_bytes().startswith(PNG_MAGIC)
    assert pdf.read_bytes().startswith(b"%PDF")
    assert sorted(p.name for p in png.parent.iterdir()) == ["e2.pdf", "e2.png"]


def test_one_labelled_line_per_condition():
    conditions = ["real", "self", "gen-weak"]
    figure = plot_learning_curves(summary_table(conditions), title="E2")
    (ax,) = figure.axes
    lines = [line for line in ax.get_lines() if isinstance(line, Line2D) and line.get_gid()]
    assert sorted(line.get_gid() for line in lines) == sorted(conditions)
    # Legends name a condition by its title, which the vocabulary derives from its id.
    assert sorted(line.get_label() for line in lines) == sorted(map(condition_title, conditions))
    # x are the training sizes in order, y the means
    real = next(line for line in lines if line.get_gid() == "real")
    assert list(real.get_xdata()) == [1000, 2000, 4000]
    assert list(real.get_ydata()) == [10.0, 13.0, 16.0]
    assert ax.get_xlabel() == "Training pairs"
    assert ax.get_ylabel() == "BLEU"
    assert figure.get_suptitle() == "E2"
    legend_labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend_labels[0] == condition_title("real")
    assert sorted(legend_labels) == sorted(map(condition_title, conditions))
    assert len(ax.collections) == 3  # one error band per condition


def test_chrf_axis_label():
    figure = plot_learning_curves(summary_table(), metric="chrf", title="E2")
    assert figure.axes[0].get_ylabel() == "chrF"


def test_real_colour_is_fixed_and_others_distinct():
    styles = condition_styles(["self", "real", "gen-strong", "gen-weak"])
    assert styles["real"][0] == REAL_COLOUR
    assert styles == condition_styles(["gen-weak", "gen-strong", "real", "self"])
    assert len({colour for colour, _ in styles.values()}) == 4
    assert len({marker for _, marker in styles.values()}) == 4
    figure = plot_learning_curves(summary_table(("self", "real")), title="t")
    (real,) = condition_lines(figure, {"real"})
    assert real.get_color() == REAL_COLOUR


def test_reference_lines_drawn_and_labelled():
    figure = plot_learning_curves(
        summary_table(), title="E1", reference_lines={"base model": 21.3, "teacher": 35.0}
    )
    (ax,) = figure.axes
    by_label = {line.get_label(): line for line in ax.get_lines()}
    assert set(by_label["base model"].get_ydata()) == {21.3}
    assert set(by_label["teacher"].get_ydata()) == {35.0}
    assert by_label["base model"].get_linestyle() == "--"
    legend_labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert "base model" in legend_labels and "teacher" in legend_labels


def test_single_seed_rows_plot_without_band(tmp_path):
    summary = summary_table(("real", "self"), sizes=(1000, 2000)).with_columns(
        pl.when(pl.col("condition") == "self").then(None).otherwise(pl.col(column)).alias(column)
        for column in ("bleu_sd", "bleu_ci_low", "bleu_ci_high")
    )
    figure = plot_learning_curves(summary, title="one seed")
    assert len(condition_lines(figure, {"real", "self"})) == 2
    assert len(figure.axes[0].collections) == 1  # only `real` has a band
    learning_curves(summary, tmp_path / "a.png", tmp_path / "a.pdf", title="one seed")
    assert (tmp_path / "a.png").stat().st_size > 0


def test_all_null_interval_columns_plot():
    summary = summary_table(("real",), sizes=(1000,)).with_columns(
        pl.lit(None, dtype=pl.Float64).alias("bleu_ci_low"),
        pl.lit(None, dtype=pl.Float64).alias("bleu_ci_high"),
    )
    figure = plot_learning_curves(summary, title="t")
    assert len(condition_lines(figure, {"real"})) == 1


def test_rejects_several_experiments_and_missing_metric():
    mixed = pl.concat([summary_table(), summary_table().with_columns(experiment=pl.lit("e1"))])
    with pytest.raises(ValueError, match="several experiments"):
        plot_learning_curves(mixed, title="t")
    with pytest.raises(ValueError, match="ter_mean"):
        plot_learning_curves(summary_table(), metric="ter", title="t")


def test_conditions_no_different_from_real_have_open_markers():
    summary = summary_table(("real", "gen-weak")).with_columns(
        significant=pl.when(pl.col("condition") == "real")
        .then(None)
        .otherwise(pl.col("size") != 2000)
    )
    figure = plot_learning_curves(summary, title="E2")
    (ax,) = figure.axes
    unlabelled = [line for line in ax.get_lines() if line.get_label().startswith("_")]
    # One overlay of open markers, at the one size where gen-weak is not significantly different.
    (open_markers,) = [line for line in unlabelled if len(line.get_xdata())]
    assert list(open_markers.get_xdata()) == [2000]
    assert open_markers.get_markerfacecolor() == "white"
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert any(label.startswith("differs from real") for label in labels)


def test_one_seed_points_are_drawn_untested_not_significant(tmp_path):
    # As figure_experiment reads a one-seed table back: `significant` has no value, so the CSV
    # gives it no type to infer.
    summary = summary_table(("real", "gen-weak")).with_columns(
        significant=pl.lit(None, pl.Boolean),
        significance_note=pl.when(pl.col("condition") == "real")
        .then(None)
        .otherwise(pl.lit("one seed: training variance untested")),
    )
    summary.write_csv(tmp_path / "t.csv")
    figure = plot_learning_curves(pl.read_csv(tmp_path / "t.csv"), title="E1")
    (ax,) = figure.axes
    marks = [line for line in ax.get_lines() if line.get_label().startswith("_")]
    (half,) = [line for line in marks if len(line.get_xdata())]
    assert list(half.get_xdata()) == [1000, 2000, 4000] and half.get_fillstyle() == "left"
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert UNTESTED_LABEL in labels
    assert SIGNIFICANT_LABEL not in labels and NOT_SIGNIFICANT_LABEL not in labels


def test_a_condition_whose_generator_did_not_learn_is_dashed_and_labelled():
    summary = summary_table(("real", "gen-weak", "gen-strong")).with_columns(
        generator_learned=pl.when(pl.col("condition") == "real")
        .then(None)
        .otherwise(pl.col("condition") == "gen-strong")
    )
    figure = plot_learning_curves(summary, title="E2")
    by_id = {line.get_gid(): line for line in figure.axes[0].get_lines()}
    weak = by_id["gen-weak"]
    assert weak.get_label() == f"{condition_title('gen-weak')}\n({NOT_LEARNED_LABEL})"
    assert weak.get_linestyle() == "--"
    assert by_id["gen-strong"].get_linestyle() == "-"
    assert by_id["real"].get_linestyle() == "-"


def test_a_condition_at_one_size_is_a_point_with_its_interval():
    summary = pl.concat(
        [
            summary_table(("real", "gen-weak"), sizes=(2000, 8000)),
            summary_table(("ordered-weak-confidence", "ordered-weak-oracle"), sizes=(2000,)),
        ]
    )
    figure = plot_learning_curves(summary, title="S1")
    (ax,) = figure.axes
    # one error bar (a LineCollection) per single-size condition, its ends at its interval
    bars = [c for c in ax.collections if c.__class__.__name__ == "LineCollection"]
    assert len(bars) == 2
    ends = sorted(tuple(sorted(s[:, 1])) for bar in bars for s in bar.get_segments())
    expected = summary.filter(pl.col("size") == 2000, pl.col("condition").str.starts_with("ord"))
    assert ends == sorted(zip(expected["bleu_ci_low"], expected["bleu_ci_high"], strict=True))
    # side by side around their size, so that the intervals do not hide one another
    points = condition_lines(figure, {"ordered-weak-confidence", "ordered-weak-oracle"})
    xs = sorted(x for line in points for x in line.get_xdata())
    assert xs[0] < 2000 < xs[1] and xs[0] + xs[1] == pytest.approx(4000)


def test_given_styles_are_kept_and_the_others_take_what_is_left():
    fixed = condition_styles(["real", "gen-fair", "gen-good", "self"])
    styles = condition_styles(["real", "gen-fair", "detector-fair"], fixed)
    assert styles["gen-fair"] == fixed["gen-fair"]
    assert styles["detector-fair"][0] != fixed["gen-fair"][0]
    assert "<" not in {
        marker for _, marker in condition_styles([f"c{i}" for i in range(12)]).values()
    }
