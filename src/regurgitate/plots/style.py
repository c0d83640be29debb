"""The look every figure of the study shares: colours and markers per condition, sizes, output.

Figures are built on a bare matplotlib Figure with the Agg canvas rather than through pyplot, so
nothing depends on a display or on global pyplot state, and tests can inspect what is drawn.
"""

from __future__ import annotations

import os
from itertools import cycle

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import ScalarFormatter

from regurgitate.io import atomic_path
from regurgitate.study.vocabulary import REAL

# `real` is the yardstick of every experiment: it always gets the same colour and marker, so it is
# recognisable across figures.
REAL_COLOUR = "#000000"
REAL_MARKER = "o"

# Okabe-Ito, the colour-blind-safe palette, without its black (reserved for `real`).
PALETTE = ["#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#F0E442"]
# Distinct marker shapes tell conditions apart in greyscale print as well. No "<" or ">": an
# arrow at a panel's edge marks a value beyond its scale (mitigations.plot_gap_closed).
MARKERS = ["s", "^", "D", "v", "P", "X", "p", "*", "h", "d"]
# Reference lines (e.g. the base model) are grey and dashed, so they never read as a condition.
REFERENCE_STYLES = [("#555555", "--"), ("#888888", ":"), ("#555555", "-."), ("#888888", "--")]


FIGSIZE = (6.4, 4.2)  # inches: one column of a page, legible when printed
PNG_DPI = 200
TITLE_SIZE = 11
LABEL_SIZE = 10
TICK_SIZE = 9
LEGEND_SIZE = 9


def condition_styles(
    conditions: list[str], fixed: dict[str, tuple[str, str]] | None = None
) -> dict[str, tuple[str, str]]:
    """(colour, marker) per condition: `real` fixed, those in `fixed` as given there, the others
    in sorted order of their ids, from the colours and markers that `fixed` leaves free.

    Sorting makes the assignment depend only on which conditions are drawn, not on row order;
    `fixed` lets a figure of some of an experiment's conditions keep the styles those have in
    the experiment's own figure.
    """
    fixed = {c: style for c, style in (fixed or {}).items() if c in conditions and c != REAL}
    colours = [c for c in PALETTE if c not in {colour for colour, _ in fixed.values()}] or PALETTE
    markers = [m for m in MARKERS if m not in {marker for _, marker in fixed.values()}] or MARKERS
    others = sorted(set(conditions) - {REAL} - set(fixed))
    styles = fixed | dict(zip(others, zip(cycle(colours), cycle(markers)), strict=False))
    if REAL in conditions:
        styles[REAL] = (REAL_COLOUR, REAL_MARKER)
    return styles


# The least range a value axis spans, per value drawn: a flat line (one seed, a model that
# learned nothing) would otherwise be zoomed until rounding noise fills the ticks (0.10175).
MIN_SPANS = {"bleu": 1.0, "chrf": 1.0, "mtld": 1.0, "tail_share": 0.1}


def tidy_value_axis(ax: Axes, value: str, floor: float | None = 0.0) -> None:
    """Give the y axis of `value` at least its MIN_SPANS range around what is drawn, keep it
    from reaching far below `floor` (no score is below 0), and write its ticks without an
    offset or a multiplier (a reader copies them, not a formula)."""
    low, high = ax.get_ylim()
    span = MIN_SPANS.get(value, 0.0)
    if high - low < span:
        centre = (low + high) / 2
        low, high = centre - span / 2, centre + span / 2
    if floor is not None and low < floor:
        # A sliver below the floor keeps a marker at 0 whole; it is smaller than a tick step,
        # so no negative tick shows.
        high = max(high, floor + span)
        low = floor - 0.03 * (high - floor)
    ax.set_ylim(low, high)
    formatter = ScalarFormatter(useOffset=False)
    formatter.set_scientific(False)
    ax.yaxis.set_major_formatter(formatter)


def new_figure(size: tuple[float, float] = FIGSIZE) -> Figure:
    """An empty figure on the Agg canvas, laid out so that outside legends stay on the page."""
    figure = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, png: str | os.PathLike, pdf: str | os.PathLike) -> None:
    """Write `figure` as PNG and PDF, each whole or not at all."""
    # The temporary names end in .tmp, so the format must be given, not inferred.
    with atomic_path(png) as tmp:
        figure.savefig(tmp, format="png", dpi=PNG_DPI, bbox_inches="tight")
    with atomic_path(pdf) as tmp:
        # No creation date: the same results give byte-identical PDFs.
        figure.savefig(tmp, format="pdf", bbox_inches="tight", metadata={"CreationDate": None})
