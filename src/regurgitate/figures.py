"""Learning-curve figures: a metric against training pairs, one line per condition.

Figures are built on a bare matplotlib Figure with the Agg canvas rather than through pyplot, so
nothing depends on a display or on global pyplot state, and tests can inspect what is drawn.
"""

from __future__ import annotations

import os
from itertools import cycle

import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from regurgitate.io import atomic_path

# `real` is the yardstick of every experiment: it always gets the same colour and marker, so it is
# recognisable across figures.
REAL_CONDITION = "real"
REAL_COLOUR = "#000000"
REAL_MARKER = "o"

# Okabe-Ito, the colour-blind-safe palette, without its black (reserved for `real`).
PALETTE = ["#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#F0E442"]
# Distinct marker shapes tell conditions apart in greyscale print as well.
MARKERS = ["s", "^", "D", "v", "P", "X", "<", ">", "p", "*"]
# Reference lines (e.g. the base model) are grey and dashed, so they never read as a condition.
REFERENCE_STYLES = [("#555555", "--"), ("#888888", ":"), ("#555555", "-."), ("#888888", "--")]

METRIC_LABELS = {"bleu": "BLEU", "chrf": "chrF"}

FIGSIZE = (6.4, 4.2)  # inches: one column of a page, legible when printed
PNG_DPI = 200
TITLE_SIZE = 11
LABEL_SIZE = 10
TICK_SIZE = 9
LEGEND_SIZE = 9


def condition_styles(conditions: list[str]) -> dict[str, tuple[str, str]]:
    """(colour, marker) per condition: `real` fixed, the others in sorted order of their ids.

    Sorting makes the assignment depend only on which conditions are drawn, not on row order.
    """
    others = sorted(set(conditions) - {REAL_CONDITION})
    styles = dict(zip(others, zip(cycle(PALETTE), cycle(MARKERS)), strict=False))
    if REAL_CONDITION in conditions:
        styles[REAL_CONDITION] = (REAL_COLOUR, REAL_MARKER)
    return styles


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


def _plot_condition(
    ax: Axes, rows: pl.DataFrame, condition: str, metric: str, style: tuple[str, str]
) -> None:
    """One condition's curve, with its 95% band where the table has one."""
    colour, marker = style
    rows = rows.sort("size")
    sizes = rows["size"].to_numpy()
    means = rows[f"{metric}_mean"].to_numpy()
    # `real` drawn on top, so generated conditions never hide the reference curve.
    z_order = 3 if condition == REAL_CONDITION else 2
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
    figure = Figure(figsize=FIGSIZE, layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()

    conditions = summary["condition"].unique().to_list()
    styles = condition_styles(conditions)
    # `real` first in the legend, the rest in sorted order like their colours.
    ordered = sorted(conditions, key=lambda c: (c != REAL_CONDITION, c))
    for condition in ordered:
        rows = summary.filter(pl.col("condition") == condition)
        _plot_condition(ax, rows, condition, metric, styles[condition])

    for (label, value), (colour, dashes) in zip(
        (reference_lines or {}).items(), cycle(REFERENCE_STYLES), strict=False
    ):
        ax.axhline(value, color=colour, linestyle=dashes, linewidth=1.2, label=label, zorder=1)

    ax.set_xlabel("Training pairs", fontsize=LABEL_SIZE)
    ax.set_ylabel(METRIC_LABELS.get(metric, metric), fontsize=LABEL_SIZE)
    ax.set_title(title, fontsize=TITLE_SIZE)
    ax.tick_params(labelsize=TICK_SIZE)
    # Thousands separators: 10,000 pairs reads faster than 10000 or 1e4.
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:,.0f}"))
    ax.grid(True, color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    # Outside the axes: curves and reference lines fill the plot, and a legend inside hides them.
    ax.legend(fontsize=LEGEND_SIZE, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return figure


def save_figure(figure: Figure, png: str | os.PathLike, pdf: str | os.PathLike) -> None:
    """Write `figure` as PNG and PDF, each whole or not at all."""
    # The temporary names end in .tmp, so the format must be given, not inferred.
    with atomic_path(png) as tmp:
        figure.savefig(tmp, format="png", dpi=PNG_DPI, bbox_inches="tight")
    with atomic_path(pdf) as tmp:
        # No creation date: the same results give byte-identical PDFs.
        figure.savefig(tmp, format="pdf", bbox_inches="tight", metadata={"CreationDate": None})


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


def plot_real_pairs(panels: list[tuple[pl.DataFrame, pl.DataFrame, str]]) -> Figure:
    """One panel per (points, needed, title), e.g. per experiment; see `_draw_real_pairs`."""
    figure = Figure(figsize=(FIGSIZE[0] * len(panels), FIGSIZE[1]), layout="constrained")
    FigureCanvasAgg(figure)
    for ax, (points, needed, title) in zip(
        figure.subplots(1, len(panels), squeeze=False)[0], panels, strict=True
    ):
        _draw_real_pairs(ax, points, needed, title)
    return figure


def _draw_real_pairs(ax: Axes, points: pl.DataFrame, needed: pl.DataFrame, title: str) -> None:
    """BLEU against the number of human pairs trained on: `real` alone (a learning curve) and,
    per generator, its full synthetic set (no human pairs) and the partial mixes of the same
    size; a dashed line marks each full synthetic set's BLEU.

    `points` and `needed` come from `regurgitate.partial` for one experiment.
    """
    generators = needed["generator"].to_list()
    styles = condition_styles([REAL_CONDITION, *generators])
    real = points.filter(pl.col("condition") == REAL_CONDITION).sort("real_pairs")
    _plot_condition(
        ax,
        real.with_columns(size=pl.col("real_pairs")),
        "real only",
        "bleu",
        styles[REAL_CONDITION],
    )
    for row in needed.iter_rows(named=True):
        generator = row["generator"]
        colour, marker = styles[generator]
        mixes = points.filter(
            (pl.col("generator") == generator) & (pl.col("size") == row["synthetic_pairs"])
        )
        full = pl.DataFrame(
            {
                "real_pairs": [0],
                **{
                    c: [row[f"synthetic_{c}"]] for c in ("bleu_mean", "bleu_ci_low", "bleu_ci_high")
                },
            }
        )
        curve = pl.concat([full, mixes.select(full.columns)], how="vertical_relaxed")
        _plot_condition(
            ax,
            curve.sort("real_pairs").with_columns(size=pl.col("real_pairs")),
            f"{row['synthetic_condition']} + human ({row['synthetic_pairs']:,} pairs)",
            "bleu",
            (colour, marker),
        )
        ax.axhline(row["synthetic_bleu_mean"], color=colour, linestyle="--", linewidth=1.0)
    ax.set_xlabel("Human pairs in the training data", fontsize=LABEL_SIZE)
    ax.set_ylabel("BLEU", fontsize=LABEL_SIZE)
    ax.set_title(title, fontsize=TITLE_SIZE)
    ax.tick_params(labelsize=TICK_SIZE)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:,.0f}"))
    ax.grid(True, color="#dddddd", linewidth=0.6)
    ax.legend(fontsize=LEGEND_SIZE, frameon=False, loc="lower right")
