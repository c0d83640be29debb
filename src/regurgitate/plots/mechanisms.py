"""Figures of the mechanisms: how the sources of targets differ, and how that relates to the loss.

Both read the mechanisms table (`mechanisms.mechanisms_table`); the first also the per-sentence
chrF of each generator. Sources keep one colour in every panel: human black, generators in the
palette order of `figures.condition_styles`.
"""

from __future__ import annotations

import os

import numpy as np
import polars as pl
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from regurgitate.analysis.diversity import MEASURES
from regurgitate.analysis.translation_errors import FLAGS
from regurgitate.plots.style import (
    LABEL_SIZE,
    LEGEND_SIZE,
    TICK_SIZE,
    TITLE_SIZE,
    condition_styles,
    new_figure,
    save_figure,
)
from regurgitate.study.vocabulary import EXPERIMENTS, FINETUNE, HUMAN, REAL, SCRATCH

EXPERIMENT_MARKERS = {SCRATCH: "o", FINETUNE: "s"}


def source_styles(sources: list[str]) -> dict[str, tuple[str, str]]:
    """(colour, marker) per source: the human references styled as `real` (they are its
    targets), generators as `figures.condition_styles` styles conditions."""
    as_conditions = {REAL if s == HUMAN else s: s for s in sources}
    styles = condition_styles(list(as_conditions))
    return {as_conditions[condition]: style for condition, style in styles.items()}


def _new_figure(rows: int, columns: int, size: tuple[float, float]) -> tuple[Figure, np.ndarray]:
    figure = new_figure(size)
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False).ravel())
    for ax in axes:
        ax.tick_params(labelsize=TICK_SIZE)
        ax.grid(True, color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
    return figure, axes


def _with_diversity(table: pl.DataFrame) -> pl.DataFrame:
    """The rows of the sources that have diversity values (a source of too few tokens has
    none, and is left out of the diversity panels)."""
    return table.filter(pl.all_horizontal(pl.col(m).is_not_null() for m in MEASURES))


def _interval(table: pl.DataFrame, measure: str) -> np.ndarray:
    """Error-bar lengths below and above each value (matplotlib's yerr/xerr shape)."""
    value = table[measure].to_numpy()
    low = table[f"{measure}_ci_low"].to_numpy()
    high = table[f"{measure}_ci_high"].to_numpy()
    return np.vstack([value - low, high - value])


def plot_mechanisms(
    table: pl.DataFrame, sentence_chrf: dict[str, list[float]], chrf_threshold: float
) -> Figure:
    """Four panels: (a) distribution of sentence chrF per generator, (b) error rate and
    reference-free flags, (c) MTLD with its interval, (d) every diversity measure relative to
    the human references; (c) and (d) leave out the sources with no diversity values."""
    styles = source_styles(table["source"].to_list())
    generators = [g for g in table["source"].to_list() if g != HUMAN]
    figure, (chrf_ax, error_ax, mtld_ax, relative_ax) = _new_figure(2, 2, (11.0, 8.0))

    for generator in generators:
        scores = np.sort(np.asarray(sentence_chrf[generator]))
        share = np.arange(1, len(scores) + 1) / len(scores)
        colour = styles[generator][0]
        chrf_ax.step(scores, share, where="post", color=colour, label=generator, linewidth=1.6)
    chrf_ax.axvline(chrf_threshold, color="#555555", linestyle="--", linewidth=1.0)
    chrf_ax.annotate(
        f" error threshold {chrf_threshold:g}",
        (chrf_threshold, 0.95),
        fontsize=LEGEND_SIZE,
        color="#555555",
    )
    chrf_ax.set_xlabel("Sentence chrF against the human reference", fontsize=LABEL_SIZE)
    chrf_ax.set_ylabel("Share of sentences at or below", fontsize=LABEL_SIZE)
    chrf_ax.set_title("(a) Sentence chrF of the generated targets", fontsize=TITLE_SIZE)
    chrf_ax.legend(fontsize=LEGEND_SIZE, frameon=False, loc="lower right")

    _error_bars(error_ax, table, styles)
    _measure_points(mtld_ax, table, styles, "mtld")
    mtld_ax.set_ylabel("MTLD (higher = more diverse)", fontsize=LABEL_SIZE)
    mtld_ax.set_title("(c) Lexical diversity: MTLD, 95% bootstrap interval", fontsize=TITLE_SIZE)
    _relative_to_human(relative_ax, table, styles)
    return figure


def _error_bars(ax, table: pl.DataFrame, styles: dict) -> None:
    """Grouped bars: error rate and the share of each flag, per source."""
    shares = ["error_rate", *[f"{flag}_share" for flag in FLAGS]]
    labels = ["chrF below\nthreshold", *[flag.replace("_", "\n") for flag in FLAGS]]
    sources = table["source"].to_list()
    width = 0.8 / len(sources)
    x = np.arange(len(shares))
    for i, source in enumerate(sources):
        row = table.row(i, named=True)
        heights = [100 * (row[column] or 0.0) for column in shares]
        ax.bar(x + i * width, heights, width, color=styles[source][0], label=source)
    ax.set_xticks(x + width * (len(sources) - 1) / 2, labels, fontsize=TICK_SIZE)
    ax.set_ylabel("Sentences (%)", fontsize=LABEL_SIZE)
    ax.set_title("(b) Errors: below the chrF threshold, and flagged", fontsize=TITLE_SIZE)
    ax.legend(fontsize=LEGEND_SIZE, frameon=False)


def _measure_points(ax, table: pl.DataFrame, styles: dict, measure: str) -> None:
    table = _with_diversity(table)
    sources = table["source"].to_list()
    errors = _interval(table, measure)
    for i, source in enumerate(sources):
        colour, marker = styles[source]
        ax.errorbar(
            i,
            table[measure][i],
            yerr=errors[:, i : i + 1],
            color=colour,
            marker=marker,
            capsize=4,
            markersize=7,
        )
    ax.set_xticks(range(len(sources)), sources, fontsize=TICK_SIZE)
    ax.set_xlim(-0.5, len(sources) - 0.5)


def _relative_to_human(ax, table: pl.DataFrame, styles: dict) -> None:
    """Each diversity measure of each generator over the human references' value, a row per
    measure (the first on top): side by side, nine names need more room than a panel's width."""
    human = table.filter(pl.col("source") == HUMAN)
    if human.height != 1:
        raise ValueError("the mechanisms table needs exactly one row for the human references")
    sources = [s for s in _with_diversity(table)["source"].to_list() if s != HUMAN]
    offsets = np.linspace(-0.25, 0.25, max(len(sources), 1))
    rows = {measure: len(MEASURES) - 1 - j for j, measure in enumerate(MEASURES)}
    for offset, source in zip(offsets, sources, strict=False):
        row = table.filter(pl.col("source") == source)
        colour, marker = styles[source]
        labelled = False
        for measure, y in rows.items():
            base = human[measure][0]
            if not base:
                continue  # no ratio to a measure the human references have none (or 0) of
            value = row[measure][0] / base
            low, high = row[f"{measure}_ci_low"][0] / base, row[f"{measure}_ci_high"][0] / base
            ax.errorbar(
                value,
                y - offset,
                xerr=[[value - low], [high - value]],
                color=colour,
                marker=marker,
                capsize=2,
                markersize=5,
                linestyle="none",
                label=None if labelled else source,
            )
            labelled = True
    ax.axvline(1.0, color="#000000", linewidth=1.0, label="human = 1")
    ax.set_yticks(list(rows.values()), [m.replace("_", " ") for m in rows], fontsize=TICK_SIZE)
    ax.set_ylim(-0.6, len(MEASURES) - 0.4)
    ax.set_xlabel("Relative to the human references", fontsize=LABEL_SIZE)
    ax.set_title("(d) Every diversity measure, human = 1", fontsize=TITLE_SIZE)
    ax.legend(fontsize=LEGEND_SIZE, frameon=False, loc="best")


def mechanisms_figure(
    table: pl.DataFrame,
    sentence_chrf: dict[str, list[float]],
    chrf_threshold: float,
    png: str | os.PathLike,
    pdf: str | os.PathLike,
) -> None:
    save_figure(plot_mechanisms(table, sentence_chrf, chrf_threshold), png, pdf)


# The loss against the mechanisms -------------------------------------------------------------

LOSS_PANELS = [
    ("error_rate", "Error rate (share below the chrF threshold)"),
    ("mtld", "MTLD of the generator's targets"),
    ("generator_bleu", "Generator's own test BLEU"),
]


EXPERIMENT_LINE_COLOURS = {SCRATCH: "#333333", FINETUNE: "#8c564b"}


def plot_loss_vs_mechanisms(table: pl.DataFrame, experiments: list[str]) -> Figure:
    """BLEU lost by the students (real minus the generator's condition, at the largest size,
    with its interval over seeds) against each generator's error rate, diversity and quality:
    per experiment a curve through the generators from weak to strong, with its interval as a
    band (and MTLD's own interval as horizontal bars). A point's colour is its generator's and
    its shape its experiment's; one legend beside the panels keys both (names written beside
    the points would overlap wherever two generators measure alike)."""
    styles = source_styles(table["source"].to_list())
    generators = table.filter(pl.col("source") != HUMAN)
    human = table.filter(pl.col("source") == HUMAN)
    figure, axes = _new_figure(1, len(LOSS_PANELS), (13.0, 4.4))
    human_mtld = human["mtld"][0] if human.height else None
    for ax, (column, label) in zip(axes, LOSS_PANELS, strict=True):
        for experiment in experiments:
            _draw_loss_curve(ax, generators, experiment, column, styles)
        if column == "mtld" and human_mtld is not None:
            ax.axvline(human_mtld, color="#000000", linestyle="--", linewidth=1.0)
        ax.axhline(0.0, color="#888888", linewidth=0.8)
        ax.set_xlabel(label, fontsize=LABEL_SIZE)
    axes[0].set_ylabel("BLEU loss: real minus generated", fontsize=LABEL_SIZE)
    _loss_legend(figure, experiments, generators["source"].to_list(), styles, human_mtld)
    figure.suptitle(
        "Students' BLEU loss at the largest size against the generators' errors and diversity",
        fontsize=TITLE_SIZE,
    )
    return figure


def _draw_loss_curve(
    ax, generators: pl.DataFrame, experiment: str, column: str, styles: dict
) -> None:
    mean, low, high = (f"bleu_loss_{experiment}_{s}" for s in ("mean", "ci_low", "ci_high"))
    rows = generators.filter(pl.col(mean).is_not_null() & pl.col(column).is_not_null())
    rows = rows.sort(column)
    if not rows.height:
        return
    x = rows[column].to_numpy()
    y = rows[mean].to_numpy()
    colour = EXPERIMENT_LINE_COLOURS[experiment]
    ax.plot(x, y, color=colour, linewidth=1.4, label=EXPERIMENTS[experiment].legend, zorder=2)
    if rows[low].null_count() == 0:
        ax.fill_between(x, rows[low].to_numpy(), rows[high].to_numpy(), color=colour, alpha=0.12)
    has_x_interval = f"{column}_ci_low" in rows.columns
    for row in rows.iter_rows(named=True):
        xerr = None
        if has_x_interval and row[f"{column}_ci_low"] is not None:
            xerr = [
                [row[column] - row[f"{column}_ci_low"]],
                [row[f"{column}_ci_high"] - row[column]],
            ]
        yerr = None if row[low] is None else [[row[mean] - row[low]], [row[high] - row[mean]]]
        ax.errorbar(
            row[column],
            row[mean],
            xerr=xerr,
            yerr=yerr,
            color=styles[row["source"]][0],
            marker=EXPERIMENT_MARKERS[experiment],
            markersize=7,
            capsize=3,
            linestyle="none",
            zorder=3,
        )


def _loss_legend(
    figure: Figure,
    experiments: list[str],
    sources: list[str],
    styles: dict,
    human_mtld: float | None,
) -> None:
    """The key of the loss figure: each experiment's line and marker shape (open, since the
    colour is the generator's), each generator's colour (a patch: any shape), and the human
    references' MTLD."""
    handles, labels = [], []
    for experiment in experiments:
        colour = EXPERIMENT_LINE_COLOURS[experiment]
        marker = EXPERIMENT_MARKERS[experiment]
        handles.append(Line2D([], [], color=colour, marker=marker, markerfacecolor="white"))
        labels.append(EXPERIMENTS[experiment].legend)
    for source in sorted(sources):
        handles.append(Patch(color=styles[source][0]))
        labels.append(f"generator {source}")
    if human_mtld is not None:
        handles.append(Line2D([], [], color="#000000", linestyle="--", linewidth=1.0))
        labels.append("human references' MTLD")
    figure.legend(handles, labels, loc="outside right upper", fontsize=LEGEND_SIZE, frameon=False)


def loss_figure(
    table: pl.DataFrame, experiments: list[str], png: str | os.PathLike, pdf: str | os.PathLike
) -> None:
    save_figure(plot_loss_vs_mechanisms(table, experiments), png, pdf)
