"""The figure of what real data is worth: BLEU against the number of human pairs trained on."""

from __future__ import annotations

import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from regurgitate.analysis.real_data_worth import BELOW, BEYOND
from regurgitate.plots.learning_curves import draw_curve
from regurgitate.plots.style import (
    FIGSIZE,
    LABEL_SIZE,
    LEGEND_SIZE,
    TICK_SIZE,
    TITLE_SIZE,
    condition_styles,
    new_figure,
    tidy_value_axis,
)
from regurgitate.study.vocabulary import REAL, condition_title


def plot_real_pairs(panels: list[tuple[pl.DataFrame, pl.DataFrame, str]]) -> Figure:
    """One panel per (points, needed, title), e.g. per experiment; see `_draw_real_pairs`."""
    # Taller than a plain panel: each legend sits under its panel.
    figure = new_figure((FIGSIZE[0] * len(panels), FIGSIZE[1] + 1.8))
    for ax, (points, needed, title) in zip(
        figure.subplots(1, len(panels), squeeze=False)[0], panels, strict=True
    ):
        _draw_real_pairs(ax, points, needed, title)
    return figure


def _draw_real_pairs(ax: Axes, points: pl.DataFrame, needed: pl.DataFrame, title: str) -> None:
    """BLEU against the number of human pairs trained on: `real` alone (a learning curve) and,
    per generator, its full synthetic set (no human pairs) with the partial mixes of the same
    size where there are any; a dashed line marks each full synthetic set's BLEU, and the
    legend says where the real curve reaches it.

    `points` and `needed` come from `regurgitate.analysis.real_data_worth` for one experiment.
    """
    needed = needed.filter(pl.col("compared") == REAL)
    generators = needed["generator"].to_list()
    styles = condition_styles([REAL, *generators])
    real = points.filter(pl.col("condition") == REAL).sort("real_pairs")
    draw_curve(ax, real.with_columns(size=pl.col("real_pairs")), REAL, "bleu", styles[REAL])
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
            row["synthetic_condition"],
            "bleu",
            (colour, marker),
            label=_synthetic_label(row, mixes["percent"].to_list()),
        )
        ax.axhline(
            row["synthetic_bleu_mean"],
            color=colour,
            linestyle="--",
            linewidth=1.0,
            label=_unreached_label(row, real["real_pairs"].to_list()),
        )
        _draw_crossing(ax, row, colour)
    # A sliver left of 0 keeps the markers of the full synthetic sets (no human pairs) whole.
    ax.set_xlim(left=-0.03 * ax.get_xlim()[1])
    ax.set_xlabel("Human pairs in the training data", fontsize=LABEL_SIZE)
    ax.set_ylabel("BLEU", fontsize=LABEL_SIZE)
    ax.set_title(title, fontsize=TITLE_SIZE)
    ax.tick_params(labelsize=TICK_SIZE)
    tidy_value_axis(ax, "bleu")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:,.0f}"))
    ax.grid(True, color="#dddddd", linewidth=0.6)
    # Under the panel: inside it the legend would cover the curves of one experiment or other,
    # and beside it would squeeze the panels of a row.
    ax.legend(
        fontsize=LEGEND_SIZE,
        frameon=False,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.11),
    )


def _synthetic_label(row: dict, percents: list[int]) -> str:
    """What a generator's curve is: its full set alone, or with the partial mixes of its size
    (a share of its pairs with human targets instead)."""
    pairs = f"{row['synthetic_pairs']:,} pairs"
    name = condition_title(row["synthetic_condition"])
    if not percents:
        return f"{name}, {pairs}\n(no human pairs)"
    return f"{name}, {pairs}\n(0-{max(percents)}% of them human)"


def _unreached_label(row: dict, real_pairs: list[int]) -> str | None:
    """The legend's word on a synthetic set's BLEU the real curve reaches outside the trained
    sizes (None where it crosses within them: the crossing is drawn, and labelled)."""
    if row["real_pairs_worth"] is not None:
        return None
    if row["worth_note"] == BELOW:
        return f"its BLEU: worth under {min(real_pairs):,} human pairs"
    if row["worth_note"] == BEYOND:
        return f"its BLEU: worth over {max(real_pairs):,} human pairs"
    return f"its BLEU: {row['worth_note']}"


def _draw_crossing(ax: Axes, row: dict, colour: str) -> None:
    """Where the real curve reaches the synthetic set's BLEU, with its bootstrap interval; an
    open interval end runs to the edge of the trained sizes. A crossing outside the trained
    sizes has no point: the legend entry of its dashed line says which way it lies."""
    worth, level = row["real_pairs_worth"], row["synthetic_bleu_mean"]
    if worth is None:
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
        label=f"{condition_title(row['synthetic_condition'])}\nworth {worth:,.0f} human pairs",
    )
