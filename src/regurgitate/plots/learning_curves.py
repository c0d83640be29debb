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
)
from regurgitate.study.vocabulary import REAL, SCORES

SIGNIFICANT_LABEL = "differs from real\n(paired tests, p < 0.05)"
NOT_SIGNIFICANT_LABEL = "no significant\ndifference"


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
    ax: Axes, rows: pl.DataFrame, condition: str, metric: str, style: tuple[str, str]
) -> None:
    """One condition's curve, with its 95% band where the table has one."""
    colour, marker = style
    rows = rows.sort("size")
    sizes = rows["size"].to_numpy()
    means = rows[f"{metric}_mean"].to_numpy()
    # `real` drawn on top, so generated conditions never hide the reference curve.
    z_order = 3 if condition == REAL else 2
    ax.plot(
        sizes,
        means,
        color=colour,
        marker=marker,
        markersize=5,
        linewidth=1.6,
        label=condition,
        zorder=z_order,
    )
    if "significant" in rows.columns and condition != REAL:
        # Open markers: the paired tests over test sentences find no difference from `real`.
        same = ~rows["significant"].fill_null(True).to_numpy()
        ax.plot(
            sizes[same],
            means[same],
            linestyle="none",
            marker=marker,
            markersize=5,
            markerfacecolor="white",
            markeredgecolor=colour,
            zorder=z_order + 0.5,
        )
    low, high = f"{metric}_ci_low", f"{metric}_ci_high"
    if low in rows.columns and high in rows.columns:
        # Null intervals (single seed) become NaN, which fill_between leaves as gaps.
        lows = rows[low].cast(pl.Float64).fill_null(np.nan).to_numpy()
        highs = rows[high].cast(pl.Float64).fill_null(np.nan).to_numpy()
        if not np.all(np.isnan(lows) | np.isnan(highs)):
            ax.fill_between(
                sizes, lows, highs, color=colour, alpha=0.18, linewidth=0, zorder=z_order - 1
            )


def plot_learning_curves(
    summary: pl.DataFrame,
    *,
    metric: str = "bleu",
    title: str,
    reference_lines: dict[str, float] | None = None,
) -> Figure:
    """Build the learning-curve figure of one experiment's summary table (see aggregate).

    x: training pairs (`size`); y: `<metric>_mean` per condition, labelled by the condition id
    as in the table, with a shaded band from `<metric>_ci_low` to `<metric>_ci_high` where those
    are present (rows with a single seed have no band). `reference_lines` maps a label to a
    score drawn as a horizontal dashed line (e.g. {"base model": 21.3}).
    """
    _check_summary(summary, metric)
    # Constrained layout keeps the outside legend within the figure's width.
    figure = new_figure()
    ax = figure.add_subplot()

    conditions = summary["condition"].unique().to_list()
    styles = condition_styles(conditions)
    # `real` first in the legend, the rest in sorted order like their colours.
    ordered = sorted(conditions, key=lambda c: (c != REAL, c))
    for condition in ordered:
        rows = summary.filter(pl.col("condition") == condition)
        draw_curve(ax, rows, condition, metric, styles[condition])

    for (label, value), (colour, dashes) in zip(
        (reference_lines or {}).items(), cycle(REFERENCE_STYLES), strict=False
    ):
        ax.axhline(value, color=colour, linestyle=dashes, linewidth=1.2, label=label, zorder=1)

    if "significant" in summary.columns:
        ax.plot([], [], linestyle="none", marker="o", color="#555555", label=SIGNIFICANT_LABEL)
        ax.plot(
            [],
            [],
            linestyle="none",
            marker="o",
            markerfacecolor="white",
            markeredgecolor="#555555",
            label=NOT_SIGNIFICANT_LABEL,
        )

    ax.set_xlabel("Training pairs", fontsize=LABEL_SIZE)
    ax.set_ylabel(SCORES.get(metric, metric), fontsize=LABEL_SIZE)
    ax.set_title(title, fontsize=TITLE_SIZE)
    ax.tick_params(labelsize=TICK_SIZE)
    # Thousands separators: 10,000 pairs reads faster than 10000 or 1e4.
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:,.0f}"))
    ax.grid(True, color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    # Outside the axes: curves and reference lines fill the plot, and a legend inside hides them.
    ax.legend(fontsize=LEGEND_SIZE, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return figure


def learning_curves(
    summary: pl.DataFrame,
    png: str | os.PathLike,
    pdf: str | os.PathLike,
    *,
    metric: str = "bleu",
    title: str,
    reference_lines: dict[str, float] | None = None,
) -> None:
    """Plot one experiment's learning curves (see plot_learning_curves) to `png` and `pdf`."""
    figure = plot_learning_curves(
        summary, metric=metric, title=title, reference_lines=reference_lines
    )
    save_figure(figure, png, pdf)
