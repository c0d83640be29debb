"""The recursion figure: test BLEU, MTLD and the tail against generation, a line per regime.

Every regime's line starts at generation 0 (trained on the human pairs, shared by all regimes,
drawn in the `real` colour), so the lines show how far each regime moves from it. Bands are
95% intervals over seeds; in the BLEU panel an open marker says that the test over seeds and
test sentences finds no difference from generation 0, a half-filled one that it is untested (one
seed), as in the learning curves.
"""

from __future__ import annotations

import os

import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from regurgitate.plots.learning_curves import draw_curve, untested
from regurgitate.plots.style import (
    LABEL_SIZE,
    LEGEND_SIZE,
    REAL_COLOUR,
    REAL_MARKER,
    REFERENCE_STYLES,
    TICK_SIZE,
    TITLE_SIZE,
    condition_styles,
    new_figure,
    save_figure,
    tidy_value_axis,
)
from regurgitate.study.vocabulary import GENERATION_ZERO_REGIME, HUMAN, REGIMES

# The panels: the table's value and its axis label.
PANELS = {
    "bleu": "Test BLEU",
    "mtld": "MTLD of its translations",
    "tail_share": "Share of rare human words kept",
}
ROOT_LABEL = f"{GENERATION_ZERO_REGIME} (generation 0, human pairs)"
HUMAN_LABEL = "human references"
NO_DIFFERENCE_LABEL = "BLEU not different from\ngeneration 0 (seeds and sentences)"
UNTESTED_LABEL = "BLEU against generation 0\nuntested (one seed)"


def _column(rows: pl.DataFrame, name: str) -> np.ndarray:
    """A column as floats, nulls as NaN (which matplotlib leaves as gaps)."""
    return rows[name].cast(pl.Float64).fill_null(np.nan).to_numpy()


def _draw_regime(ax: Axes, rows: pl.DataFrame, value: str, regime: str, style: tuple) -> None:
    """One regime's line with its band: the learning curves' drawing with the generation on the
    x axis; the test's open and half-filled markers in the BLEU panel only."""
    if value != "bleu":
        rows = rows.drop("significant", strict=False)
    rows = rows.drop("size").rename({"generation": "size"})
    draw_curve(ax, rows, regime, value, style, label=regime)


def _draw_panel(ax: Axes, table: pl.DataFrame, value: str, styles: dict) -> None:
    root = table.filter(pl.col("regime") == GENERATION_ZERO_REGIME)
    for regime in [r for r in REGIMES if r in styles]:
        rows = pl.concat([root, table.filter(pl.col("regime") == regime)]).sort("generation")
        _draw_regime(ax, rows, value, regime, styles[regime])
    ax.plot(
        root["generation"].to_numpy(),
        _column(root, f"{value}_mean"),
        linestyle="none",
        marker=REAL_MARKER,
        markersize=6,
        color=REAL_COLOUR,
        zorder=4,
    )
    human = table.filter(pl.col("regime") == HUMAN)
    # The human targets keep all their rare words by definition: a line at 1 would only squash
    # the generations' tail against the axis.
    if value != "tail_share" and human.height and human[f"{value}_mean"].is_not_null().all():
        colour, dashes = REFERENCE_STYLES[0]
        ax.axhline(human[f"{value}_mean"][0], color=colour, linestyle=dashes, linewidth=1.2)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.tick_params(labelsize=TICK_SIZE)
    tidy_value_axis(ax, value)
    ax.grid(True, color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)


def _legend(figure: Figure, styles: dict, human: bool, one_seed: bool) -> None:
    handles, labels = [], []
    ax = figure.axes[0]
    entries = [(ROOT_LABEL, {"color": REAL_COLOUR, "marker": REAL_MARKER, "linestyle": "none"})]
    for regime in [r for r in REGIMES if r in styles]:
        colour, marker = styles[regime]
        entries.append((regime, {"color": colour, "marker": marker}))
    if human:
        colour, dashes = REFERENCE_STYLES[0]
        entries.append((HUMAN_LABEL, {"color": colour, "linestyle": dashes}))
    entries.append(
        (
            NO_DIFFERENCE_LABEL,
            {"marker": "o", "linestyle": "none", "markerfacecolor": "white", "color": "#555555"},
        )
    )
    if one_seed:
        entries.append(
            (
                UNTESTED_LABEL,
                {
                    "marker": "o",
                    "linestyle": "none",
                    "fillstyle": "left",
                    "color": "#555555",
                    "markerfacecoloralt": "white",
                },
            )
        )
    for label, style in entries:
        (handle,) = ax.plot([], [], **style)
        handles.append(handle)
        labels.append(label)
    # Under the panels, where no panel title or the figure's title can run into it.
    figure.legend(
        handles,
        labels,
        loc="outside lower center",
        ncols=min(len(handles), 3),
        fontsize=LEGEND_SIZE,
        frameon=False,
    )


def plot_recursion(table: pl.DataFrame, *, title: str) -> Figure:
    """The figure of results/tables/recursion.csv: a column per panel (PANELS), a row per size."""
    needed = ["regime", "generation", "size", *[f"{v}_mean" for v in PANELS]]
    missing = [column for column in needed if column not in table.columns]
    if missing:
        raise ValueError(f"the recursion table lacks the columns {missing}")
    regimes = [r for r in table["regime"].unique().to_list() if r in REGIMES]
    if table.filter(pl.col("regime") == GENERATION_ZERO_REGIME).is_empty() or not regimes:
        raise ValueError("the recursion table needs generation 0 and at least one regime")
    styles = condition_styles(regimes)
    sizes = sorted(table["size"].unique().to_list())
    figure = new_figure((3.6 * len(PANELS), 3.2 * len(sizes) + 1.4))
    axes = figure.subplots(len(sizes), len(PANELS), squeeze=False)
    for row, size in enumerate(sizes):
        at_size = table.filter(pl.col("size") == size)
        for column, (value, label) in enumerate(PANELS.items()):
            ax = axes[row][column]
            _draw_panel(ax, at_size, value, styles)
            # Two lines: on one, the longest title runs past its panel into the next one's.
            ax.set_title(f"{label}\n{size:,} pairs", fontsize=LABEL_SIZE)
            if row == len(sizes) - 1:
                ax.set_xlabel("Generation", fontsize=LABEL_SIZE)
    tested = table.filter(pl.col("generation") > 0)
    one_seed = "significant" in tested.columns and untested(tested).any()
    _legend(
        figure, styles, human=table.filter(pl.col("regime") == HUMAN).height > 0, one_seed=one_seed
    )
    figure.suptitle(title, fontsize=TITLE_SIZE)
    return figure


def recursion_figure(
    table: pl.DataFrame, png: str | os.PathLike, pdf: str | os.PathLike, *, title: str
) -> None:
    save_figure(plot_recursion(table, title=title), png, pdf)
