"""The figure jobs of every stage: each experiment's learning curves, the mechanisms, the partial
mixes, the recursion and the mitigations. They live apart from the tables' jobs because
matplotlib takes about a second to import, which a table job would otherwise pay."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from regurgitate.analysis.aggregate import load_runs, summarise
from regurgitate.analysis.real_data_worth import real_pair_points
from regurgitate.io import read_json
from regurgitate.plots.learning_curves import learning_curve_conditions, learning_curves
from regurgitate.plots.mechanisms import loss_figure, mechanisms_figure
from regurgitate.plots.mitigations import gap_closed_figure, strategy_curves
from regurgitate.plots.real_data_worth import plot_real_pairs
from regurgitate.plots.recursion import recursion_figure
from regurgitate.plots.style import save_figure


def figure_experiment(
    *, summary_path: Path, png: Path, pdf: Path, title: str, reference_metrics: dict[str, str]
) -> None:
    """The learning curves of one experiment's real, self and gen- conditions; `reference_metrics`
    maps a line's label to a metrics JSON whose BLEU it draws."""
    summary = pl.read_csv(summary_path)
    drawn = learning_curve_conditions(summary["condition"].unique().to_list())
    summary = summary.filter(pl.col("condition").is_in(drawn))
    lines = {label: read_json(path)["bleu"] for label, path in reference_metrics.items()}
    learning_curves(summary, png, pdf, title=title, reference_lines=lines)


def figure_mechanisms(
    *,
    table_path: Path,
    record_paths: list[str],
    experiments: list[str],
    mechanisms_out: dict,
    loss_out: dict,
) -> None:
    """The mechanisms figure and the loss-against-mechanisms figure (`*_out`: {"png", "pdf"})."""
    table = pl.read_csv(table_path)
    records = [read_json(path) for path in record_paths]
    sentence_chrf = {r["source"]: r["sentence_chrf"] for r in records if r["sentence_chrf"]}
    threshold = records[0]["chrf_threshold"]
    mechanisms_figure(table, sentence_chrf, threshold, mechanisms_out["png"], mechanisms_out["pdf"])
    loss_figure(table, experiments, loss_out["png"], loss_out["pdf"])


def figure_partial(
    *,
    summary_paths: dict[str, str],
    table_path: Path,
    titles: dict[str, str],
    png: Path,
    pdf: Path,
) -> None:
    """One panel per experiment: BLEU against the human pairs trained on (see
    plots.real_data_worth)."""
    needed = pl.read_csv(table_path)
    panels = []
    for experiment, summary_path in summary_paths.items():
        summary = pl.read_csv(summary_path).filter(pl.col("experiment") == experiment)
        panels.append(
            (
                real_pair_points(summary),
                needed.filter(pl.col("experiment") == experiment),
                titles[experiment],
            )
        )
    save_figure(plot_real_pairs(panels), png, pdf)


def figure_recursion(*, table_path: Path, png: Path, pdf: Path, title: str) -> None:
    recursion_figure(pl.read_csv(table_path), png, pdf, title=title)


def figure_mitigations(
    *,
    run_paths: list[str],
    table_path: Path,
    unmitigated: dict[str, dict[str, str]],
    curves_out: dict[str, dict[str, dict[str, str]]],
    gap_out: dict[str, str],
) -> None:
    """Learning curves of real, unmitigated and mitigated data per experiment and strategy
    (`curves_out`: experiment -> strategy -> {"png", "pdf"}), and the gap closed by every
    strategy (`gap_out`: {"png", "pdf"})."""
    summary = summarise(load_runs(run_paths))
    for experiment, strategies in curves_out.items():
        rows = summary.filter(pl.col("experiment") == experiment)
        for strategy, paths in strategies.items():
            strategy_curves(
                rows, strategy, paths["png"], paths["pdf"], unmitigated=unmitigated[experiment]
            )
    gap_closed_figure(pl.read_csv(table_path), gap_out["png"], gap_out["pdf"])
