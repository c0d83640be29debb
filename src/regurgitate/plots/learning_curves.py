"""Learning-curve figures: a metric against training pairs, one line per condition."""

from __future__ import annotations

import os
from itertools import cycle

import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from regurgitate.plots.style import (
    LABEL_SIZE,
    LEGEND_SIZE,
    REFERENCE_STYLES,
    TICK_SIZE,
    TITLE_SIZE,
    condition_styles,
    new_figure,
    save_figure,
    tidy_value_axis,
)
from regurgitate.study.vocabulary import REAL, SCORES, condition_kind, condition_title

SIGNIFICANT_LABEL = "differs from real\n(seeds and sentences,\np < 0.05)"
NOT_SIGNIFICANT_LABEL = "no significant\ndifference"
UNTESTED_LABEL = "untested\n(one seed)"
# Beside a condition whose generator did not learn to translate (`generator_learned`).
NOT_LEARNED_LABEL = "generator did not learn"
MARK_COLOUR = "#555555"
# The kinds of condition the experiment figure draws; partial mixes and mitigations have figures
# of their own, which keep these conditions' styles.
LEARNING_CURVE_KINDS = ("real", "self", "gen")
# Conditions measured at one size only (the mitigations) are drawn as points with error bars,
# spread sideways by this share of the size so that their intervals do not hide one another.
DODGE = 0.04


def learning_curve_conditions(conditions: list[str]) -> list[str]:
    """The conditions among `conditions` that the experiment figure draws (real, self, gen-*)."""
    return [c for c in conditions if condition_kind(c) in LEARNING_CURVE_KINDS]


def flags(column: pl.Series) -> pl.Series:
    """A true/false/empty column as booleans, also as read from a CSV where it is all empty (no
    type to infer: text)."""
    return column.cast(pl.Boolean)


def untested(rows: pl.DataFrame) -> pl.Series:
    """Per row, whether the test against `real` could not be run (`significance_note`, one
    seed); a row without `significance_note` and without a test (no `real` at its size, or
    generation 0 of the recursion) is not marked."""
    empty = flags(rows["significant"]).is_null()
    if "significance_note" not in rows.columns:
        return empty
    return empty & rows["significance_note"].is_not_null()


def generator_not_learned(rows: pl.DataFrame) -> bool:
    """Whether the table marks the generator of these rows as one that did not learn."""
    if "generator_learned" not in rows.columns:
        return False
    return bool((~flags(rows["generator_learned"])).fill_null(False).any())


def _check_summary(summary: pl.DataFrame, metric: str) -> None:
    needed = ["condition", "size", f"{metric}_mean"]
    missing = [column for column in needed if column not in summary.columns]
    if missing:
        raise ValueError(f"summary lacks the columns {missing} needed to plot {metric}")
    if "experiment" in summary.columns and summary["experiment"].n_unique() > 1:
        # Conditions share ids across experiments; mixing them would join unrelated points.
        raise ValueError(
            "summary holds several experiments "
            f"({sorted(summary['experiment'].unique().to_list())}); plot one at a time"
        )


def draw_curve(
    ax: Axes,
    rows: pl.DataFrame,
    condition: str,
    metric: str,
    style: tuple[str, str],
    label: str | None = None,
    dodge: float = 0.0,
) -> None:
    """One condition's curve, with its 95% band where the table has one, labelled `label` (by
    default the condition's title, vocabulary.condition_title; its id is the line's gid). Where
    the table has `significant`, a point's marker is filled where the condition differs from
    `real`, open where it does not, and half filled where it is untested (one seed); where
    `generator_learned` is false the line is dashed and its label says so. The band stops at 0:
    every value drawn (scores, MTLD, shares) is non-negative, and a normal interval over few
    seeds can reach below what any run can score. A condition at a single size is a point
    with an error bar instead of a band (a band of one size has no width), drawn `dodge`
    times its size to the side."""
    colour, marker = style
    rows = rows.sort("size")
    sizes = rows["size"].to_numpy() * (1.0 + dodge)
    means = rows[f"{metric}_mean"].to_numpy()
    # `real` drawn on top, so generated conditions never hide the reference curve.
    z_order = 3 if condition == REAL else 2
    not_learned = generator_not_learned(rows)
    if label is None:
        label = condition_title(condition)
    ax.plot(
        sizes,
        means,
        color=colour,
        marker=marker,
        markersize=5,
        linewidth=1.6,
        linestyle="--" if not_learned else "-",
        label=f"{label}\n({NOT_LEARNED_LABEL})" if not_learned else label,
        gid=condition,
        zorder=z_order,
    )
    if "significant" in rows.columns and condition != REAL:
        significant = flags(rows["significant"])
        overlays = {
            # Open: the test over seeds and sentences finds no difference from `real`.
            "white": (~significant).fill_null(False).to_numpy(),
            # Half filled: not tested (one seed: the test needs the spread of seeds).
            "left": untested(rows).to_numpy(),
        }
        for fill, shown in overlays.items():
            ax.plot(
                sizes[shown],
                means[shown],
                linestyle="none",
                marker=marker,
                markersize=5,
                markerfacecolor=colour if fill == "left" else "white",
                markerfacecoloralt="white",
                fillstyle="left" if fill == "left" else "full",
                markeredgecolor=colour,
                zorder=z_order + 0.5,
            )
    low, high = f"{metric}_ci_low", f"{metric}_ci_high"
    if low in rows.columns and high in rows.columns:
        # Null intervals (single seed) become NaN, which fill_between leaves as gaps.
        lows = np.maximum(rows[low].cast(pl.Float64).fill_null(np.nan).to_numpy(), 0.0)
        highs = rows[high].cast(pl.Float64).fill_null(np.nan).to_numpy()
        if len(sizes) == 1 and not np.isnan(lows[0] + highs[0]):
            ax.errorbar(
                sizes,
                means,
                yerr=[means - lows, highs - means],
                color=colour,
                capsize=3,
                linewidth=1.2,
                linestyle="none",
                zorder=z_order - 1,
            )
        elif not np.all(np.isnan(lows) | np.isnan(highs)):
            ax.fill_between(
                sizes, lows, highs, color=colour, alpha=0.18, linewidth=0, zorder=z_order - 1
            )


def plot_learning_curves(
    summary: pl.DataFrame,
    *,
    metric: str = "bleu",
    title: str,
    reference_lines: dict[str, float] | None = None,
    styles: dict[str, tuple[str, str]] | None = None,
) -> Figure:
    """Build the learning-curve figure of one experiment's summary table (see aggregate).

    x: training pairs (`size`); y: `<metric>_mean` per condition, labelled by its title
    (vocabulary.condition_title; the line's gid is the id as in the table), with a shaded band
    from `<metric>_ci_low` to `<metric>_ci_high` where those are present (rows with a single
    seed have no band). `reference_lines` maps a label to a score drawn as a horizontal dashed
    line (e.g. {"base model": 21.3}). `styles` fixes some conditions' (colour, marker), as in
    style.condition_styles.
    """
    _check_summary(summary, metric)
    # Constrained layout keeps the outside legend within the figure's width.
    figure = new_figure()
    ax = figure.add_subplot()

    conditions = summary["condition"].unique().to_list()
    styles = condition_styles(conditions, styles)
    # `real` first in the legend, the rest in sorted order like their colours.
    ordered = sorted(conditions, key=lambda c: (c != REAL, c))
    sizes = dict(summary.group_by("condition").agg(pl.col("size").n_unique()).iter_rows())
    points = [c for c in ordered if sizes[c] == 1]
    # Single-size conditions side by side, centred on their size.
    dodges = {c: DODGE * (i - (len(points) - 1) / 2) for i, c in enumerate(points)}
    for condition in ordered:
        rows = summary.filter(pl.col("condition") == condition)
        draw_curve(ax, rows, condition, metric, styles[condition], dodge=dodges.get(condition, 0.0))

    for (label, value), (colour, dashes) in zip(
        (reference_lines or {}).items(), cycle(REFERENCE_STYLES), strict=False
    ):
        ax.axhline(value, color=colour, linestyle=dashes, linewidth=1.2, label=label, zorder=1)

    if "significant" in summary.columns:
        _significance_legend(ax, summary.filter(pl.col("condition") != REAL))

    ax.set_xlabel("Training pairs", fontsize=LABEL_SIZE)
    ax.set_ylabel(SCORES.get(metric, metric), fontsize=LABEL_SIZE)
    # The figure's title, centred on the page: over the axes alone (narrowed by the legend
    # beside them) a long title runs off the page's left edge.
    figure.suptitle(title, fontsize=TITLE_SIZE)
    ax.tick_params(labelsize=TICK_SIZE)
    tidy_value_axis(ax, metric)
    # Thousands separators: 10,000 pairs reads faster than 10000 or 1e4.
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:,.0f}"))
    ax.grid(True, color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    # Outside the axes: curves and reference lines fill the plot, and a legend inside hides them.
    ax.legend(fontsize=LEGEND_SIZE, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return figure


def _significance_legend(ax: Axes, compared: pl.DataFrame) -> None:
    """Legend entries of the markers the figure holds: differs, no difference, untested."""
    significant = flags(compared["significant"])
    entries = [
        (SIGNIFICANT_LABEL, significant.fill_null(False).any(), {"fillstyle": "full"}),
        (
            NOT_SIGNIFICANT_LABEL,
            (~significant).fill_null(False).any(),
            {"markerfacecolor": "white"},
        ),
        (
            UNTESTED_LABEL,
            untested(compared).any(),
            {"fillstyle": "left", "markerfacecoloralt": "white"},
        ),
    ]
    for label, present, style in entries:
        if present:
            ax.plot([], [], linestyle="none", marker="o", color=MARK_COLOUR, label=label, **style)


def learning_curves(
    summary: pl.DataFrame,
    png: str | os.PathLike,
    pdf: str | os.PathLike,
    *,
    metric: str = "bleu",
    title: str,
    reference_lines: dict[str, float] | None = None,
    styles: dict[str, tuple[str, str]] | None = None,
) -> None:
    """Plot one experiment's learning curves (see plot_learning_curves) to `png` and `pdf`."""
    figure = plot_learning_curves(
        summary, metric=metric, title=title, reference_lines=reference_lines, styles=styles
    )
    save_figure(figure, png, pdf)
