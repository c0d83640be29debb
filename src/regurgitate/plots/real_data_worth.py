"""The figure of what real data is worth: BLEU against the number of human pairs trained on."""

from __future__ import annotations

import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from regurgitate.plots.learning_curves import draw_curve
from regurgitate.plots.style import (
    FIGSIZE,
    LABEL_SIZE,
    LEGEND_SIZE,
    TICK_SIZE,
    TITLE_SIZE,
    condition_styles,
    new_figure,
)
from regurgitate.study.vocabulary import REAL


def plot_real_pairs(panels: list[tuple[pl.DataFrame, pl.DataFrame, str]]) -> Figure:
    """One panel per (points, needed, title), e.g. per experiment; see `_draw_real_pairs`."""
    figure = new_figure((FIGSIZE[0] * len(panels), FIGSIZE[1]))
    for ax, (points, needed, title) in zip(
        figure.subplots(1, len(panels), squeeze=False)[0], panels, strict=True
    ):
        _draw_real_pairs(ax, points, needed, title)
    return figure


def _draw_real_pairs(ax: Axes, points: pl.DataFrame, needed: pl.DataFrame, title: str) -> None:
    """BLEU against the number of human pairs trained on: `real` alone (a learning curve) and,
    per generator, its full synthetic set (no human pairs) and the partial mixes of the same
    size; a dashed line marks each full synthetic set's BLEU.

    `points` and `needed` come from `regurgitate.analysis.real_data_worth` for one experiment.
    """
    needed = needed.filter(pl.col("compared") == REAL)
    generators = needed["generator"].to_list()
    styles = condition_styles([REAL, *generators])
    real = points.filter(pl.col("condition") == REAL).sort("real_pairs")
    draw_curve(
        ax,
        real.with_columns(size=pl.col("real_pairs")),
        "real only",
        "bleu",
        styles[REAL],
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
        draw_curve(
            ax,
            curve.sort("real_pairs").with_columns(size=pl.col("real_pairs")),
            f"{row['synthetic_condition']} + human ({row['synthetic_pairs']:,} pairs)",
            "bleu",
            (colour, marker),
        )
        ax.axhline(row["synthetic_bleu_mean"], color=colour, linestyle="--", linewidth=1.0)
        _draw_crossing(ax, row, colour)
    ax.set_xlim(left=0)
    ax.set_xlabel("Human pairs in the training data", fontsize=LABEL_SIZE)
    ax.set_ylabel("BLEU", fontsize=LABEL_SIZE)
    ax.set_title(title, fontsize=TITLE_SIZE)
    ax.tick_params(labelsize=TICK_SIZE)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:,.0f}"))
    ax.grid(True, color="#dddddd", linewidth=0.6)
    ax.legend(fontsize=LEGEND_SIZE, frameon=False, loc="lower right")


def _draw_crossing(ax: Axes, row: dict, colour: str) -> None:
    """Where the real curve reaches the synthetic set's BLEU, with its bootstrap interval; an
    open interval end runs to the edge of the trained sizes."""
    worth, level = row["real_pairs_worth"], row["synthetic_bleu_mean"]
    if worth is None:
        ax.annotate(
            row["worth_note"],
            (0.02, level),
            xycoords=("axes fraction", "data"),
            va="bottom",
            fontsize=TICK_SIZE,
            color=colour,
        )
        return
    low = row["real_pairs_worth_low"] if row["real_pairs_worth_low"] is not None else 0
    high = row["real_pairs_worth_high"]
    if high is None:
        high = ax.get_xlim()[1]
    ax.errorbar(
        [worth],
        [level],
        xerr=[[worth - low], [high - worth]],
        color=colour,
        marker="D",
        markersize=6,
        capsize=4,
        linewidth=1.6,
        zorder=4,
        label=f"{row['synthetic_condition']} worth {worth:,.0f} human pairs",
    )
