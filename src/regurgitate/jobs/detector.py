"""Jobs of workflow/rules/mitigate.smk for S3: the human-vs-machine detector of a generator,
trained and scored on held-out sources, and its P(human) of each pair the generator wrote."""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl

from regurgitate.analysis.detector import (
    detector_data,
    evaluate_detector,
    load_detector,
    save_detector,
)
from regurgitate.analysis.detector import (
    train_detector as fit_detector,
)
from regurgitate.io import write_json, write_parquet

log = logging.getLogger(__name__)


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
