"""Jobs of workflow/rules/mitigate.smk: what the S1 (quality-ordered) and S3 (detector-ranked)
curricula need, and the mitigations' tables and figures. The curricula themselves, S2's mixes
and the sources- controls are built by jobs.curricula."""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl

from regurgitate.analysis.aggregate import load_runs, summarise, with_generator_learned
from regurgitate.analysis.detector import (
    detector_data,
    evaluate_detector,
    load_detector,
    save_detector,
)
from regurgitate.analysis.detector import (
    train_detector as fit_detector,
)
from regurgitate.analysis.diversity import profile_values
from regurgitate.analysis.mitigations import mitigations_table
from regurgitate.analysis.quality import correlation_table, quality_table, reverse_direction
from regurgitate.engine.device import pick_device, use_bf16
from regurgitate.engine.model import load_model
from regurgitate.engine.scoring import pair_nll as force_decoded_nll
from regurgitate.engine.tokenizer import Tokenizer
from regurgitate.io import read_json, write_json, write_parquet, write_table
from regurgitate.jobs.generate import translate_pool
from regurgitate.plots.mitigations import gap_closed_figure, strategy_curves

log = logging.getLogger(__name__)

# --- S1: what the quality metrics need, and the scores ----------------------------------------


def reverse_pairs(*, pairs_path: Path, out: Path) -> None:
    """The pairs English to German: what the reverse model trains on or back-translates."""
    pairs = pl.read_parquet(pairs_path)
    write_parquet(reverse_direction(pairs.select("id", "source", "target")), out)


def back_translate(
    *,
    generator: str,
    model_path: Path,
    tokenizer_path: Path,
    pool_path: Path,
    decoding: dict,
    out: Path,
    device: str = "auto",
    precision: str = "auto",
) -> None:
    """The reverse model's translations of a generator's targets (round trip)."""
    translate_pool(
        name=f"reverse model on {generator}",
        model_path=model_path,
        tokenizer_path=tokenizer_path,
        pool_path=pool_path,
        decoding=decoding,
        out=out,
        device=device,
        precision=precision,
    )


def pair_nll(
    *,
    model_path: Path,
    tokenizer_path: Path,
    pairs_path: Path,
    out: Path,
    reverse: bool = False,
    batch_tokens: int = 8000,
    device: str = "auto",
    precision: str = "auto",
) -> pl.DataFrame:
    """Score every pair of a parquet (id, source, target) under a model: writes (id, nll).

    `reverse` scores the source given the target, for the reverse model of dual cross-entropy.
    """
    where = pick_device(device)
    pairs = pl.read_parquet(pairs_path)
    if reverse:
        pairs = reverse_direction(pairs)
    model, _ = load_model(model_path, where)
    nll = force_decoded_nll(
        model,
        Tokenizer(tokenizer_path),
        pairs["source"].to_list(),
        pairs["target"].to_list(),
        batch_tokens,
        where,
        bf16=use_bf16(precision, where),
    )
    frame = pl.DataFrame({"id": pairs["id"], "nll": nll})
    write_parquet(frame, out)
    return frame


def quality_scores(
    *,
    student_path: Path,
    synthetic_path: Path,
    generator: str,
    metrics: list[str],
    inputs: dict[str, Path | list[Path]],
    scores_out: Path,
    correlation_out: Path,
) -> pl.DataFrame:
    """Every quality metric of one generator's student-pool pairs, and each reference-free
    metric's rank correlation with the oracle. `inputs` holds what the metrics need: `others`
    (other generators' synthetic data), `back_translations`, `forward_nll`, `reverse_nll`."""
    others = {Path(p).stem: pl.read_parquet(p) for p in inputs.get("others", [])}
    frames = {
        name: pl.read_parquet(inputs[name]) if name in inputs else None
        for name in ("back_translations", "forward_nll", "reverse_nll")
    }
    scores = quality_table(
        pl.read_parquet(student_path),
        pl.read_parquet(synthetic_path),
        generator,
        metrics,
        others=others or None,
        **frames,
    )
    write_parquet(scores, scores_out)
    if "oracle" in metrics:
        correlations = correlation_table(scores, generator)
        for row in correlations.iter_rows(named=True):
            log.info(
                "%s %s: Spearman rho with the oracle %.3f", generator, row["metric"], row["rho"]
            )
        write_table(correlations, correlation_out, decimals=4)
    else:
        write_table(pl.DataFrame({"generator": [], "metric": []}), correlation_out)
    return scores


# --- S3: the detector -------------------------------------------------------------------------


def train_detector(
    *,
    pool_path: Path,
    synthetic_path: Path,
    generator: str,
    held_out: float,
    seed: int,
    model_out: Path,
    metrics_out: Path,
    regularisation: float = 4.0,
) -> dict:
    """Train the detector of one generator on the detector pool's training sources, score it on
    the held-out sources, and write the detector and its metrics JSON.

    The detector that ranks the student pool is this one, trained without the held-out sources,
    so the reported accuracy and AUC are those of the detector in use."""
    data = detector_data(
        pl.read_parquet(pool_path), pl.read_parquet(synthetic_path), generator, held_out, seed
    )
    detector = fit_detector(
        data["train_human"],
        data["train_generated"],
        seed,
        generator=generator,
        regularisation=regularisation,
    )
    scores = evaluate_detector(detector, data["held_out_human"], data["held_out_generated"])
    identical = data["held_out_human"]["target"] == data["held_out_generated"]["target"]
    record = {
        "generator": generator,
        **scores,
        "train_sources": data["train_human"].height,
        "held_out_sources": data["held_out_human"].height,
        "held_out_identical_share": float(identical.mean()),
        "regularisation": regularisation,
        "seed": seed,
    }
    log.info(
        "%s detector: held-out accuracy %.3f, ROC AUC %.3f on %d pairs",
        generator,
        scores["accuracy"],
        scores["roc_auc"],
        scores["n"],
    )
    save_detector(detector, model_out)
    write_json(record, metrics_out)
    return record


def detector_scores(*, detector_path: Path, synthetic_path: Path, out: Path) -> pl.DataFrame:
    """P(human) of each pair of a generator's synthetic data: writes (id, p_human)."""
    detector = load_detector(detector_path)
    synthetic = pl.read_parquet(synthetic_path)
    p = detector.p_human(synthetic["source"].to_list(), synthetic["target"].to_list())
    frame = pl.DataFrame({"id": synthetic["id"], "p_human": p})
    write_parquet(frame, out)
    return frame


# --- tables and figures -----------------------------------------------------------------------


def table_quality(*, correlation_paths: list[str], out: Path) -> pl.DataFrame:
    """Each generator's quality metrics' correlations with the oracle, in one table."""
    table = pl.concat([pl.read_csv(p) for p in correlation_paths], how="diagonal_relaxed")
    write_table(table, out, decimals=4)
    return table


def table_detector(*, metric_paths: list[str], out: Path) -> pl.DataFrame:
    table = pl.DataFrame([read_json(p) for p in metric_paths], infer_schema_length=None)
    write_table(table, out, decimals=4)
    return table


def table_mitigations(
    *,
    run_paths: list[str],
    unmitigated: dict[str, dict[str, str]],
    mix_mechanisms: dict[str, str],
    min_gap: float,
    out: Path,
    generators_table: Path,
    experiment_tables: list[str] | None = None,
) -> pl.DataFrame:
    """BLEU and the share of the gap closed of every mitigated condition, per baseline,
    experiment and size, with each mix's lexical diversity beside it (S2), and whether the
    generators it mitigates learnt to translate (`generator_learned`, from `generators_table`:
    ordering or mixing the output of one that did not has no gap to close).

    `unmitigated` maps each experiment to {generator: its unmitigated condition id};
    `mix_mechanisms` each mixed condition to its mechanisms JSON; `experiment_tables` are the
    experiments' tables, whose tests against real (`significant`) gate the share."""
    runs = load_runs(run_paths)
    significant = None
    if experiment_tables:
        columns = ["experiment", "condition", "size", "significant"]
        significant = pl.concat([pl.read_csv(p, columns=columns) for p in experiment_tables])
    table = pl.concat(
        [
            mitigations_table(
                runs.filter(pl.col("experiment") == experiment),
                min_gap=min_gap,
                conditions=unmitigated.get(experiment),
                significant=significant,
            )
            for experiment in sorted(set(runs["experiment"]))
        ],
        how="vertical_relaxed",
    ).sort(["strategy", "generator", "condition", "baseline", "experiment", "size"])
    diversity = pl.DataFrame(
        [
            {"condition": condition} | _mix_diversity(read_json(path)["diversity"])
            for condition, path in mix_mechanisms.items()
        ],
        schema={c: pl.String if c == "condition" else pl.Float64 for c in
                ("condition", "ttr", "mtld", "mtld_ci_low", "mtld_ci_high")},
    )  # fmt: skip
    table = table.join(diversity, on="condition", how="left")
    table = with_generator_learned(table, generators_table)
    write_table(table, out)
    return table


def _mix_diversity(profile: dict | None) -> dict:
    """A mix's TTR and MTLD with its interval, null where it has no diversity values."""
    ttr, mtld = profile_values(profile, "ttr"), profile_values(profile, "mtld")
    return {
        "ttr": ttr["value"],
        "mtld": mtld["value"],
        "mtld_ci_low": mtld["ci_low"],
        "mtld_ci_high": mtld["ci_high"],
    }


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
