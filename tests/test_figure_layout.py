"""Every figure the study makes can go into a paper as it is: no two of its texts (titles, axis
labels, tick labels, legends, annotations) overlap, and none runs off the canvas.

Texts are measured as matplotlib draws them: each Text records its own window extent while the
canvas draws, so a text that is not drawn (a tick outside the view, an annotation clipped away)
is not measured, and every one that is, is.
"""

from __future__ import annotations

from contextlib import ExitStack
from itertools import combinations
from pathlib import Path
from unittest import mock

import polars as pl
import pytest
import yaml
from conftest import TINY
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from regurgitate.jobs import figures as figure_jobs
from regurgitate.jobs import rule_graph
from regurgitate.plots import learning_curves, mechanisms, mitigations
from regurgitate.plots import recursion as recursion_plots
from regurgitate.plots.learning_curves import plot_learning_curves
from regurgitate.plots.mechanisms import plot_loss_vs_mechanisms
from regurgitate.plots.real_data_worth import plot_real_pairs
from regurgitate.study.config import full_set_conditions
from regurgitate.study.vocabulary import (
    EXPERIMENTS,
    FINETUNE,
    HUMAN,
    RECURSION_TITLE,
    SCRATCH,
    condition_title,
)

# Pixels two boxes may share, or one may stick out by: antialiased edges, not a collision.
SLACK = 1.0


def drawn_texts(figure: Figure) -> list[tuple[str, Bbox]]:
    """(text, window extent) of every non-empty text the canvas draws."""
    drawn = []
    draw = Text.draw

    def record(text: Text, renderer) -> None:
        draw(text, renderer)
        if text.get_visible() and text.get_text().strip():
            drawn.append((text.get_text(), text.get_window_extent(renderer)))

    with mock.patch.object(Text, "draw", record):
        figure.canvas.draw()
    return drawn


def layout_problems(figure: Figure) -> list[str]:
    """Each pair of drawn texts that overlap, and each text that leaves the canvas."""
    texts = drawn_texts(figure)
    canvas = figure.bbox
    problems = [
        f"{text!r} leaves the canvas ({box.bounds} in {canvas.bounds})"
        for text, box in texts
        if box.x0 < canvas.x0 - SLACK
        or box.y0 < canvas.y0 - SLACK
        or box.x1 > canvas.x1 + SLACK
        or box.y1 > canvas.y1 + SLACK
    ]
    for (text, box), (other, other_box) in combinations(texts, 2):
        shared = Bbox.intersection(box, other_box)
        if shared is not None and shared.width > SLACK and shared.height > SLACK:
            problems.append(f"{text!r} overlaps {other!r}")
    return problems


def render_study_figures(study: Path, out: Path) -> dict[str, Figure]:
    """Every figure of the finished study in `study`, as the workflow's figure jobs build it from
    the study's tables, by the path under results/figures/ of its PNG, without the suffix."""
    config = yaml.safe_load(TINY.read_text())
    results = study / "results"
    figures = {}

    def keep(figure: Figure, png, pdf) -> None:
        figures[Path(png).relative_to(out).with_suffix("").as_posix()] = figure

    def paths(name: str) -> dict[str, str]:
        return {ext: str(out / f"{name}.{ext}") for ext in ("png", "pdf")}

    experiments = [e for e in (SCRATCH, FINETUNE) if e in config]
    saving = [learning_curves, mechanisms, mitigations, recursion_plots, figure_jobs, rule_graph]
    with ExitStack() as stack:
        for module in saving:
            stack.enter_context(mock.patch.object(module, "save_figure", keep))
        for experiment in experiments:
            base = config[FINETUNE]["base"]
            references = (
                {
                    f"base model ({base}) before fine-tuning": str(
                        results / "generators" / base / "metrics.json"
                    )
                }
                if experiment == FINETUNE
                else {}
            )
            figure_jobs.figure_experiment(
                summary_path=results / "tables" / f"{experiment}.csv",
                title=EXPERIMENTS[experiment].title,
                reference_metrics=references,
                **paths(experiment),
            )
        figure_jobs.figure_mechanisms(
            table_path=results / "tables" / "mechanisms.csv",
            record_paths=[
                str(results / "mechanisms" / f"{s}.json") for s in [HUMAN, *config["generators"]]
            ],
            experiments=experiments,
            mechanisms_out=paths("mechanisms"),
            loss_out=paths("loss_vs_mechanisms"),
        )
        figure_jobs.figure_partial(
            summary_paths={e: str(results / "tables" / f"{e}.csv") for e in experiments},
            table_path=results / "tables" / "partial.csv",
            titles={e: EXPERIMENTS[e].short_title for e in experiments},
            **paths("partial"),
        )
        mitigated = config["mitigations"]["experiments"]
        # The strategies drawn are those the study drew: the configuration leaves them to the
        # schema's defaults.
        curves = sorted((results / "figures" / "mitigations").glob("*.png"))
        figure_jobs.figure_mitigations(
            run_paths=[
                str(p) for e in mitigated for p in (results / "runs" / e).rglob("metrics.json")
            ],
            table_path=results / "tables" / "mitigations.csv",
            unmitigated={e: full_set_conditions(config, e) for e in mitigated},
            curves_out={
                e: {
                    p.stem.removeprefix(f"{e}-"): paths(f"mitigations/{p.stem}")
                    for p in curves
                    if p.stem.startswith(f"{e}-")
                }
                for e in mitigated
            },
            gap_out=paths("gap_closed"),
        )
        figure_jobs.figure_recursion(
            table_path=results / "tables" / "recursion.csv",
            title=RECURSION_TITLE,
            **paths("recursion"),
        )
        rule_graph.figure_rule_graph(
            graph_path=study / ".snakemake" / "regurgitate" / "rule_graph.json",
            **paths("rule_graph"),
        )
    return figures


@pytest.mark.slow
def test_every_figure_of_the_tiny_study_is_legible(finished_run, tmp_path):
    figures = render_study_figures(finished_run, tmp_path)
    made = sorted(
        png.relative_to(finished_run / "results" / "figures").with_suffix("").as_posix()
        for png in (finished_run / "results" / "figures").rglob("*.png")
    )
    # A figure the study makes but this test does not render would go unchecked.
    assert sorted(figures) == made
    problems = [f"{name}: {p}" for name, figure in figures.items() for p in layout_problems(figure)]
    assert not problems, "\n".join(problems)


# --- the figures readers found faults in, from small tables with the columns of the real ones ---


def flat_summary(interval: float | None) -> pl.DataFrame:
    """An E1 table as a base model that learned nothing gives: flat curves a few hundredths of a
    BLEU point apart; with one seed no interval, with two one of +-`interval`."""
    rows = []
    means = {"real": 0.1035, "self": 0.1030, "ordered-weak-dual_cross_entropy": 0.1025}
    for condition, bleu in means.items():
        for size in (100, 300):
            low, high = (bleu - interval, bleu + interval) if interval else (None, None)
            rows.append(
                {"experiment": FINETUNE, "condition": condition, "size": size}
                | {"bleu_mean": bleu, "bleu_ci_low": low, "bleu_ci_high": high}
            )
    return pl.DataFrame(rows)


def test_flat_learning_curves_have_round_ticks_and_readable_names():
    figure = plot_learning_curves(
        flat_summary(None), title=EXPERIMENTS[FINETUNE].title, reference_lines={"base": 0.1035}
    )
    assert layout_problems(figure) == []
    (ax,) = figure.axes
    low, high = ax.get_ylim()
    ticks = [t.get_text() for t in ax.get_yticklabels() if low <= t.get_position()[1] <= high]
    # Round numbers (no more than two decimals), not 0.10175, 0.10200, ...
    assert len(ticks) >= 3 and all(len(t.partition(".")[2]) <= 2 for t in ticks), ticks
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "S1 ordered by dual cross-entropy (weak)" in legend
    assert not any("ordered-weak" in label for label in legend)


def test_interval_bands_stop_at_zero_bleu():
    figure = plot_learning_curves(flat_summary(0.9), title=EXPERIMENTS[FINETUNE].title)
    assert layout_problems(figure) == []
    (ax,) = figure.axes
    assert min(band.get_paths()[0].vertices[:, 1].min() for band in ax.collections) >= 0
    assert ax.get_ylim()[0] > -0.1  # no room made for BLEU no run can score


def worth_row(generator: str, bleu: float, note: str, **row) -> dict:
    return {
        "generator": generator,
        "synthetic_condition": f"gen-{generator}",
        "synthetic_pairs": 300,
        "synthetic_bleu_mean": bleu,
        "synthetic_bleu_ci_low": bleu - 0.1,
        "synthetic_bleu_ci_high": bleu + 0.1,
        "compared": "real",
        "real_pairs_worth": None,
        "real_pairs_worth_low": None,
        "real_pairs_worth_high": None,
        "worth_note": note,
    } | row


def test_partial_figure_keeps_its_notes_apart_and_names_its_curves_truthfully():
    # Two synthetic sets of nearly the same BLEU, one worth less than the smallest real size and
    # one more than the largest: their notes once sat on top of each other.
    needed = pl.DataFrame(
        [
            worth_row("weak", 0.60, "below the smallest size"),
            worth_row("strong", 0.61, "beyond the largest size"),
            worth_row("mid", 0.9, "interpolated", real_pairs_worth=150.0),
        ]
    )
    points = pl.DataFrame(
        {
            "condition": ["real", "real", "partial-weak-25"],
            "generator": [None, None, "weak"],
            "percent": [100, 100, 25],
            "size": [100, 300, 300],
            "real_pairs": [100, 300, 75],
            "bleu_mean": [0.7, 1.3, 0.4],
            "bleu_ci_low": [0.5, 1.1, 0.2],
            "bleu_ci_high": [0.9, 1.5, 0.6],
        }
    )
    figure = plot_real_pairs([(points, needed, EXPERIMENTS[FINETUNE].short_title)] * 2)
    assert layout_problems(figure) == []
    legend = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    strong = next(label for label in legend if label.startswith(condition_title("gen-strong")))
    # Its curve is the full synthetic set alone: not a mix with human pairs.
    assert "no human pairs" in strong and "+ human" not in strong
    assert "0-25% of them human" in next(
        label for label in legend if label.startswith(condition_title("gen-weak"))
    )
    assert "its BLEU: worth under 100 human pairs" in legend
    assert "its BLEU: worth over 300 human pairs" in legend


def test_loss_figure_keys_its_markers_and_keeps_its_texts_apart():
    # Two generators alike in MTLD and in loss: names written beside their points overlapped.
    table = pl.DataFrame(
        {
            "source": [HUMAN, "weak", "strong"],
            "error_rate": [None, 0.67, 1.0],
            "mtld": [18.2, 5.07, 4.97],
            "mtld_ci_low": [17.0, 4.8, 4.85],
            "mtld_ci_high": [19.5, 5.4, 5.04],
            "generator_bleu": [None, 3.9, 0.48],
        }
        | {
            f"bleu_loss_{e}_{s}": [None, 0.30 + i, 0.29 + i]
            for i, e in enumerate([SCRATCH, FINETUNE])
            for s in ("mean", "ci_low", "ci_high")
        }
    )
    figure = plot_loss_vs_mechanisms(table, [SCRATCH, FINETUNE])
    assert layout_problems(figure) == []
    (legend,) = figure.legends
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels[:2] == [EXPERIMENTS[SCRATCH].legend, EXPERIMENTS[FINETUNE].legend]
    markers = [handle.get_marker() for handle in legend.legend_handles[:2]]
    assert markers == [
        mechanisms.EXPERIMENT_MARKERS[SCRATCH],
        mechanisms.EXPERIMENT_MARKERS[FINETUNE],
    ]
    assert "human references' MTLD" in labels
