"""The one interface every generator backend implements."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

import polars as pl


@dataclass
class Generation:
    target: str
    logprob: float | None  # sum over target tokens, where the backend gives it
    tokens: int  # target tokens produced
    cost: float  # money spent on this row (0 for local models)
    finish_reason: str  # "stop" or "length" (cut off by the length limit)
    input_tokens: int = 0  # prompt tokens billed (API generators)
    # refusal, empty, cut_off, wrong_language: why a row may not be a usable translation
    flags: list[str] = field(default_factory=list)


class Generator(Protocol):
    name: str

    def translate(self, sources: list[str]) -> list[Generation]: ...


def generations_frame(ids: list[str], sources: list[str], rows: list[Generation]) -> pl.DataFrame:
    """The synthetic-data table: `results/synthetic/<generator>.parquet`."""
    return pl.DataFrame(
        {
            "id": ids,
            "source": sources,
            "target": [g.target for g in rows],
            "logprob": [g.logprob for g in rows],
            "tokens": [g.tokens for g in rows],
            "cost": [g.cost for g in rows],
            "finish_reason": [g.finish_reason for g in rows],
            "input_tokens": [g.input_tokens for g in rows],
            "flags": [g.flags for g in rows],
        },
        schema_overrides={
            "logprob": pl.Float64,
            "cost": pl.Float64,
            "tokens": pl.Int64,
            "input_tokens": pl.Int64,
            "flags": pl.List(pl.String),
        },
    )


def cost_record(name: str, backend: str, model: str | None, rows: list[Generation]) -> dict:
    """Tokens, money and flags of one synthetic-data table (`<generator>.cost.json`)."""
    flags = Counter(flag for row in rows for flag in row.flags)
    return {
        "generator": name,
        "backend": backend,
        "model": model,
        "rows": len(rows),
        "input_tokens": sum(r.input_tokens for r in rows),
        "output_tokens": sum(r.tokens for r in rows),
        "cost": sum(r.cost for r in rows),
        "flags": dict(sorted(flags.items())),
    }
