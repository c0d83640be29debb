"""Recursion: generations of models, each trained on its predecessor's output (docs/study.md).

A lineage is one (size k, seed). Generation 0 trains on the human targets of k sources: the
first k rows of the `real` curriculum of that seed, so it is the `real` condition at size k.
Every generation n translates the same k sources, and the regime decides what generation n+1
trains on (`REGIMES` in vocabulary.py):

- `replace`: generation n's translations only (k rows);
- `accumulate`: the human pairs and the translations of generations 0..n ((n+2) k rows);
- `accumulate-fixed`: that mixture subsampled to k rows, one target per source, each origin
  (human, generation 0, ..., generation n) in equal shares in every prefix: as much data as
  `replace`, but the older data is kept;
- `real-share`: the configured percentage of human targets in every prefix, the rest
  generation n's translations (k rows).

Every curriculum is built by the study's curriculum functions (curricula.py) on the lineage's
own pairs, so its rows carry an `origin`: `human`, or the generation that wrote the target.
"""

from __future__ import annotations

import polars as pl

from regurgitate.study.curricula import (
    CURRICULUM_COLUMNS,
    generated_curriculum,
    generated_targets,
    mixed_curriculum,
    partial_curriculum,
)
from regurgitate.study.vocabulary import (
    ACCUMULATE,
    ACCUMULATE_FIXED,
    GENERATION_ZERO_REGIME,
    HUMAN,
    REAL_SHARE,
    REGIMES,
    REPLACE,
    generation_origin,
)


def check_generation(regime: str, generation: int) -> None:
    """Generation 0 is the shared root (`real`); every regime starts at generation 1."""
    if (regime == GENERATION_ZERO_REGIME) != (generation == 0):
        raise ValueError(
            f"{regime}/{generation}: generation 0 trains on the human pairs and is named "
            f"{GENERATION_ZERO_REGIME!r}; the regimes {sorted(REGIMES)} name generations 1 and "
            "later"
        )
    if regime != GENERATION_ZERO_REGIME and regime not in REGIMES:
        raise ValueError(f"{regime!r} is not a regime; the regimes are {sorted(REGIMES)}")


def parents(regime: str, generation: int) -> list[int]:
    """The earlier generations whose translations generation `generation` trains on."""
    check_generation(regime, generation)
    if generation == 0:
        return []
    if regime in (ACCUMULATE, ACCUMULATE_FIXED):
        return list(range(generation))
    return [generation - 1]


def lineage_pairs(real: pl.DataFrame, size: int) -> pl.DataFrame:
    """Generation 0's curriculum: the first `size` rows of a `real` curriculum."""
    if size > real.height:
        raise ValueError(f"a lineage of {size} pairs, but the curriculum has {real.height}")
    return real.head(size).select(CURRICULUM_COLUMNS)


def regime_curriculum(
    regime: str,
    generation: int,
    human: pl.DataFrame,
    translations: dict[int, pl.DataFrame],
    *,
    seed: int,
    real_share: int | None = None,
) -> pl.DataFrame:
    """What generation `generation` >= 1 of `regime` trains on.

    `human` is generation 0's curriculum (the lineage's sources with their human targets);
    `translations` maps each generation in `parents(regime, generation)` to its translations of
    those sources (id, source, target). `seed` draws the row order of the mixed regimes;
    `real_share` is the percentage of human targets of `real-share`.
    """
    wanted = parents(regime, generation)
    if generation == 0:
        raise ValueError("generation 0 trains on the human pairs: lineage_pairs builds it")
    if sorted(translations) != wanted:
        raise ValueError(
            f"{regime}/{generation} trains on the translations of generations {wanted}, "
            f"got {sorted(translations)}"
        )
    named = {generation_origin(g): frame for g, frame in translations.items()}
    last = generation_origin(generation - 1)
    if regime == REPLACE:
        return generated_curriculum(human, named[last], last, seed)
    if regime == REAL_SHARE:
        if real_share is None:
            raise ValueError(f"{REAL_SHARE} needs the percentage of human pairs (real_share)")
        return partial_curriculum(human, named[last], last, real_share, seed)
    if regime == ACCUMULATE_FIXED:
        return mixed_curriculum(human, {HUMAN: human, **named}, seed)
    # accumulate: every pair ever made for these sources, human first, then by generation.
    blocks = [human.select(CURRICULUM_COLUMNS)]
    for parent in wanted:
        name = generation_origin(parent)
        targets = generated_targets(human, named[name], name, pool_name="lineage")
        blocks.append(targets.with_columns(origin=pl.lit(name)))
    return pl.concat(blocks)
