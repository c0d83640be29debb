"""Figures of the mitigations: learning curves per strategy, and the share of the gap closed.

Built on learning_curves.py and style.py (learning curves, colours, titles and file output), so
a condition looks the same here as in every other figure of the study.
"""

from __future__ import annotations

import os

import numpy as np
import polars as pl
from matplotlib.figure import Figure

from regurgitate.analysis.mitigations import mitigation_of
from regurgitate.plots.learning_curves import learning_curve_conditions, learning_curves
from regurgitate.plots.style import (
    FIGSIZE,
    LABEL_SIZE,
    TICK_SIZE,
    TITLE_SIZE,
    condition_styles,
    new_figure,
    save_figure,
)
from regurgitate.study.vocabulary import EXPERIMENTS, REAL, STRATEGIES, condition_title


def strategy_conditions(
    conditions: list[str],
    strategy: str,
    real: str = REAL,
    unmitigated: dict[str, str] | None = None,
) -> list[str]:
    """The conditions of one strategy's figure: real, every mitigated condition of the strategy
    among `conditions`, and the unmitigated conditions they are measured against
    (`unmitigated` as in mitigations.mitigation_of)."""
    mitigations = [
        m for c in conditions if (m := mitigation_of(c, unmitigated)) and m.strategy == strategy
    ]
    if not mitigations:
        raise ValueError(f"no conditions of strategy {strategy} among {sorted(conditions)}")
    baselines = {c for m in mitigations for c in m.unmitigated}
    return sorted({real, *baselines, *(m.condition for m in mitigations)} & set(conditions))


def strategy_curves(
    summary: pl.DataFrame,
    strategy: str,
    png: str | os.PathLike,
    pdf: str | os.PathLike,
    *,
    metric: str = "bleu",
    real: str = REAL,
    unmitigated: dict[str, str] | None = None,
) -> None:
    """Learning curves of real, unmitigated and mitigated conditions of one strategy (S1, S2,
    S3) in one experiment's summary table (aggregate.summarise). `real`, `self` and the `gen-*`
    conditions keep the colours and markers of the experiment's own figure."""
    conditions = summary["condition"].unique().to_list()
    curves = learning_curve_conditions(conditions)
    shown = strategy_conditions(conditions, strategy, real, unmitigated)
    experiment = summary["experiment"][0] if "experiment" in summary.columns else None
    title = f"{strategy}, {STRATEGIES[strategy].name}"
    if experiment is not None:
        title += f" ({_experiment_title(experiment)})"
    rows = summary.filter(pl.col("condition").is_in(shown))
    learning_curves(rows, png, pdf, metric=metric, title=title, styles=condition_styles(curves))


def plot_gap_closed(table: pl.DataFrame, *, size: int | None = None) -> Figure:
    """Dot plot of the share of the gap closed by every mitigated condition, with its 95%
    interval, at `size` (by default each experiment's largest size); one panel per experiment.

    0 marks the unmitigated data, 1 real data. A mix has a row per baseline (the mean of its
    generators, the best of them). A row without a share (no significant gap, or one below
    min_gap) shows the table's `gap_note` in place of a dot; a share beyond SHARE_WINDOW is an
    arrow at the panel's edge with its value and interval written beside it.
    """
    needed = ["strategy", "condition", "experiment", "size", "gap_closed_mean"]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise ValueError(f"the mitigations table lacks the columns {missing}")
    if not table.height:
        raise ValueError("the mitigations table is empty: nothing to plot")
    experiments = sorted(table["experiment"].unique().to_list())
    if "baseline" not in table.columns:
        table = table.with_columns(baseline=pl.lit(None, pl.String))
    if "deployable" not in table.columns:
        table = table.with_columns(deployable=pl.lit(True))
    # The oracle reads the human reference: an upper bound, drawn apart below the strategies.
    table = table.with_columns(upper_bound=pl.col("deployable").fill_null(True).not_())
    ordered = table.sort(["upper_bound", "strategy", "condition", "baseline"], nulls_last=True)
    conditions = ordered.select("condition", "baseline").unique(maintain_order=True).rows()
    bounds = set(ordered.filter(pl.col("upper_bound")).select("condition", "baseline").rows())
    styles = condition_styles(sorted({c for c, _ in conditions}))
    height = max(FIGSIZE[1], 1.2 + 0.32 * len(conditions))
    figure = new_figure((FIGSIZE[0] * max(1, 0.75 * len(experiments)), height))
    axes = figure.subplots(1, len(experiments), sharey=True, squeeze=False)[0]
    y = {c: len(conditions) - 1 - i for i, c in enumerate(conditions)}
    for ax, experiment in zip(axes, experiments, strict=True):
        rows = table.filter(pl.col("experiment") == experiment)
        at = size if size is not None else rows["size"].max()
        rows = rows.filter(pl.col("size") == at)
        limits = _share_limits(rows)
        for row in rows.iter_rows(named=True):
            key = (row["condition"], row["baseline"])
            _draw_share(ax, row, y[key], styles[row["condition"]], limits)
        ax.set_xlim(*limits)
        if bounds and len(bounds) < len(conditions):
            ax.axhline(len(bounds) - 0.5, color="#999999", linestyle=":", linewidth=1.0)
        ax.axvline(0.0, color="#555555", linestyle="--", linewidth=1.0)
        ax.axvline(1.0, color="#000000", linestyle="-", linewidth=1.0)
        for x, label in ((0.0, "unmitigated"), (1.0, "real")):
            ax.annotate(
                label,
                (x, 1.0),
                xycoords=("data", "axes fraction"),
                ha="center",
                va="bottom",
                fontsize=TICK_SIZE,
                color="#555555",
            )
        ax.set_title(f"{_experiment_title(experiment)}, {at:,} pairs", fontsize=TITLE_SIZE, pad=16)
        ax.set_xlabel("Share of the gap to real data closed", fontsize=LABEL_SIZE)
        ax.grid(True, axis="x", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
        ax.tick_params(labelsize=TICK_SIZE)
    labels = [_row_label(c, b) + ("\n(upper bound)" if (c, b) in bounds else "") for c, b in y]
    axes[0].set_yticks(list(y.values()), labels)
    axes[0].set_ylim(-0.7, len(conditions) - 0.3)
    return figure


def _experiment_title(experiment: str) -> str:
    """An experiment's panel title (vocabulary.EXPERIMENTS), or its id where it has none."""
    known = EXPERIMENTS.get(experiment)
    return known.short_title if known else experiment


def _row_label(condition: str, baseline: str | None) -> str:
    label = condition_title(condition)
    # Only a mix has more than one baseline; the others are measured against gen-<g>.
    return f"{label}\nvs {baseline}" if baseline and _strategy(condition) == "S2" else label


def _strategy(condition: str) -> str:
    mitigation = mitigation_of(condition)
    return mitigation.strategy if mitigation else ""


# A share measured against a tiny gap (a mix against its best component, say) can be -30 with
# an interval of hundreds; drawn to scale it would squeeze every other row into a point. Shares
# beyond this window sit at its edge as an arrow, with their numbers written beside it.
SHARE_WINDOW = (-2.0, 3.0)
SHARE_COLUMNS = ["gap_closed_mean", "gap_closed_ci_low", "gap_closed_ci_high"]


def _share_limits(rows: pl.DataFrame) -> tuple[float, float]:
    """The x range of a panel: 0 (unmitigated), 1 (real) and the shares and intervals that fall
    within SHARE_WINDOW, with a margin."""
    values = [0.0, 1.0] + [
        v
        for column in SHARE_COLUMNS
        if column in rows.columns
        for v in rows[column].drop_nulls().drop_nans().to_list()
        if SHARE_WINDOW[0] <= v <= SHARE_WINDOW[1]
    ]
    left, right = min(values), max(values)
    margin = 0.1 * (right - left)
    return left - margin, right + margin


def _draw_share(
    ax, row: dict, y: float, style: tuple[str, str], limits: tuple[float, float]
) -> None:
    colour, marker = style
    mean = row["gap_closed_mean"]
    if mean is None or np.isnan(mean):
        ax.annotate(
            row.get("gap_note") or "no gap",
            (0.5, y),
            xycoords=("axes fraction", "data"),
            ha="center",
            va="center",
            fontsize=TICK_SIZE,
            color="#555555",
            # over the lines at 0 and 1, which would otherwise strike the words through
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.0},
        )
        return
    low, high = row.get("gap_closed_ci_low"), row.get("gap_closed_ci_high")
    left, right = limits
    if not left <= mean <= right:
        _draw_off_scale(ax, mean, low, high, y, colour, left if mean < left else right)
        return
    if low is not None and high is not None:
        low, high = max(low, left), min(high, right)  # an interval beyond the edge ends there
        ax.errorbar(
            [mean],
            [y],
            xerr=[[mean - low], [high - mean]],
            color=colour,
            capsize=3,
            linewidth=1.4,
            marker="none",
        )
    ax.plot(
        [mean],
        [y],
        color=colour,
        marker=marker,
        markersize=7,
        linestyle="none",
        label=row["condition"],
    )


def _draw_off_scale(ax, mean, low, high, y: float, colour: str, edge: float) -> None:
    leftwards = mean < edge
    ax.plot(
        [edge], [y], color=colour, marker="<" if leftwards else ">", markersize=8, clip_on=False
    )
    interval = f" [{low:.1f}, {high:.1f}]" if low is not None and high is not None else ""
    ax.annotate(
        f"{mean:.1f}{interval}",
        (edge, y),
        xytext=(10 if leftwards else -10, 0),
        textcoords="offset points",
        ha="left" if leftwards else "right",
        va="center",
        fontsize=TICK_SIZE,
        color=colour,
    )


def gap_closed_figure(
    table: pl.DataFrame,
    png: str | os.PathLike,
    pdf: str | os.PathLike,
    *,
    size: int | None = None,
) -> None:
    """The summary figure of the gap closed by every strategy (see plot_gap_closed)."""
    save_figure(plot_gap_closed(table, size=size), png, pdf)
