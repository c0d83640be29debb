"""What a configuration's API generators would cost, before anything is spent: no request is
sent and no key is needed.

    python -m regurgitate.generators.estimate --configfile config/paper-llm.yaml

Sources come from `results/pools/<pool>.parquet` where the workflow has made them (rows already
in the cache are then free); otherwise each pool holds `pools.<pool>` sentences of `--words`
words. Tokens are estimated at 4 characters (or 1.4 words) a token; outputs as long as sources.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import polars as pl
import yaml

from regurgitate.generators.cache import Cache
from regurgitate.generators.llm import CACHE_FILE
from regurgitate.generators.settings import API_BACKENDS, ApiSettings

CHARS_PER_TOKEN = 4.0
TOKENS_PER_WORD = 1.4


def tokens(text_chars: float) -> int:
    return int(round(text_chars / CHARS_PER_TOKEN))


def pool_sources(workdir: Path, pool: str, config: dict) -> list[str] | int:
    """The pool's sources where they exist, else how many sentences it will hold."""
    path = workdir / "results" / "pools" / f"{pool}.parquet"
    if path.exists():
        return pl.read_parquet(path, columns=["source"])["source"].to_list()
    rows = config["pools"].get(pool)
    if rows is None:
        raise SystemExit(f"pools.{pool} is null (all that remain) and {path} does not exist yet")
    return int(rows)


def estimate(config: dict, workdir: Path, pools: list[str], words: float) -> list[dict]:
    rows = []
    for name, generator in config["generators"].items():
        if generator["backend"] not in API_BACKENDS:
            continue
        settings = ApiSettings.from_config(name, generator, config.get("prompts"))
        system, template = settings.prompt.messages("")
        overhead = tokens(len(system) + len(template)) + 8  # the chat format's own tokens
        for pool in pools:
            sources = pool_sources(workdir, pool, config)
            if isinstance(sources, int):
                count, cached, requests = sources, 0, sources
                source_tokens = sources * words * TOKENS_PER_WORD
            else:
                keys = [settings.cache_key(s) for s in sources]
                cache_path = workdir / settings.cache_dir / CACHE_FILE
                known = Cache(cache_path).get(keys) if cache_path.exists() else {}
                # one request for each distinct source that is not cached
                todo = {k: s for k, s in zip(keys, sources, strict=True) if k not in known}
                count, cached, requests = len(sources), sum(k in known for k in keys), len(todo)
                source_tokens = sum(tokens(len(s)) for s in todo.values())
            input_tokens = int(requests * overhead + source_tokens)
            output_tokens = int(source_tokens)
            cost = settings.cost(input_tokens, output_tokens)  # with single requests
            rows.append(
                {
                    "generator": name,
                    "model": settings.model,
                    "pool": pool,
                    "rows": count,
                    "cached": cached,
                    "input_tokens": input_tokens,
                    "output_tokens": output_tokens,
                    "batch": settings.batch,
                    "cost": round(cost * (settings.batch_price_factor if settings.batch else 1), 4),
                    "cost_if_batch": round(cost * settings.batch_price_factor, 4),
                    "budget": None if settings.budget is None else float(settings.budget),
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configfile", type=Path, required=True)
    parser.add_argument("--directory", type=Path, default=Path("."), help="the workflow's")
    parser.add_argument("--pools", nargs="+", default=["student"])
    parser.add_argument("--words", type=float, default=25.0, help="words a source sentence")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    config = yaml.safe_load(args.configfile.read_text())
    rows = estimate(config, args.directory, args.pools, args.words)
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
        return 0
    if not rows:
        print(f"{args.configfile}: no openai or anthropic generators")
        return 0
    frame = pl.DataFrame(rows)
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_hide_dataframe_shape=True, tbl_width_chars=200):
        print(frame)
    total, batch = frame["cost"].sum(), frame["cost_if_batch"].sum()
    print(f"total: {total:.2f} as configured, {batch:.2f} with batch: true everywhere")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
