"""The two mechanisms (M) behind the loss, per source of targets, and their table.

A source is the human references of the student pool (`human`) or one generator's targets for
the same sources. Each gets the reference-free error flags and its lexical diversity; a
generator also gets its error rate and TER against the human references. Every source is read
in the same seeded order as the curricula, so with one seed the diversity sample of every
source is drawn from the same sentences, up to the sample's token count.
"""

from __future__ import annotations

import polars as pl

from regurgitate.analysis.diversity import MEASURES, diversity_profile, profile_values
from regurgitate.analysis.translation_errors import FLAGS, error_profile, flag_rows
from regurgitate.study.curricula import generated_curriculum, real_curriculum
from regurgitate.study.vocabulary import HUMAN


def source_mechanisms(
    student: pl.DataFrame,
    synthetic: pl.DataFrame | None,
    name: str,
    *,
    chrf_threshold: float,
    sample_tokens: int | None,
    bootstrap: int,
    seed: int,
    keep_punctuation: bool = False,
) -> dict:
    """Error and diversity measures of one source: `synthetic` None means the human targets.
    `sample_tokens` None gives no diversity values (a source of fewer than
    diversity.MIN_DIVERSITY_TOKENS tokens, left out of the common sample)."""
    human = real_curriculum(student, seed)
    if synthetic is None:
        pairs = human
        flags = flag_rows(pairs["source"].to_list(), pairs["target"].to_list())
        errors = {"flags": {flag: sum(rows) for flag, rows in flags.items()}}
    else:
        pairs = generated_curriculum(student, synthetic, name, seed)
        errors = error_profile(
            pairs["source"].to_list(),
            pairs["target"].to_list(),
            human["target"].to_list(),
            chrf_threshold=chrf_threshold,
        )
    diversity = None
    if sample_tokens is not None:
        try:
            diversity = diversity_profile(
                pairs["target"].to_list(),
                sample_tokens=sample_tokens,
                seed=seed,
                bootstrap=bootstrap,
                keep_punctuation=keep_punctuation,
            )
        except ValueError as err:
            raise ValueError(f"{name}: {err} (sample of {sample_tokens} tokens)") from err
    return {
        "source": name,
        "n": pairs.height,
        "chrf_threshold": chrf_threshold,
        "error_rate": errors.get("error_rate"),
        "ter": errors.get("ter"),
        "ter_signature": errors.get("ter_signature"),
        "mean_sentence_chrf": errors.get("mean_sentence_chrf"),
        "flags": errors["flags"],
        "sentence_chrf": errors.get("sentence_chrf"),
        "sample_tokens": sample_tokens,
        "keep_punctuation": keep_punctuation,
        "bootstrap": bootstrap,
        "diversity": diversity,
    }


def mechanisms_table(
    records: list[dict], losses: pl.DataFrame, generator_bleu: dict[str, float]
) -> pl.DataFrame:
    """A row per source (human first): error measures, flag shares, diversity with intervals
    (null for a source with no diversity values), the generator's own test BLEU and the
    students' BLEU loss per experiment.

    `losses` has columns generator, experiment, size, loss_mean, loss_ci_low, loss_ci_high.
    """
    rows = []
    for record in sorted(records, key=lambda r: (r["source"] != HUMAN, r["source"])):
        row = {
            "source": record["source"],
            "n": record["n"],
            "error_rate": record["error_rate"],
            "ter": record["ter"],
            "mean_sentence_chrf": record["mean_sentence_chrf"],
            **{f"{flag}_share": record["flags"][flag] / record["n"] for flag in FLAGS},
            "generator_bleu": generator_bleu.get(record["source"]),
        }
        for measure in MEASURES:
            values = profile_values(record["diversity"], measure)
            row[measure] = values["value"]
            row[f"{measure}_ci_low"] = values["ci_low"]
            row[f"{measure}_ci_high"] = values["ci_high"]
        rows.append(row)
    table = pl.DataFrame(rows, infer_schema_length=None)
    for experiment in losses["experiment"].unique(maintain_order=True).to_list():
        wide = losses.filter(pl.col("experiment") == experiment).select(
            pl.col("generator").alias("source"),
            pl.col("size").alias(f"bleu_loss_{experiment}_size"),
            *[
                pl.col(f"loss_{stat}").alias(f"bleu_loss_{experiment}_{stat}")
                for stat in ("mean", "ci_low", "ci_high")
            ],
        )
        table = table.join(wide, on="source", how="left", maintain_order="left")
    return table
