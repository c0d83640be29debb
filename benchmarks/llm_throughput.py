"""Throughput, re-run cost and fault handling of the API generators, against the local server of
the tests (tests/fake_api.py: the OpenAI and Anthropic wire protocols, real clients).

    PYTHONPATH=src python benchmarks/llm_throughput.py [--rows 400] [--latency 0.2]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fake_api import fake_api, toy_translation  # noqa: E402
from toy import toy_pair  # noqa: E402

from regurgitate.generators.llm import ApiGenerator  # noqa: E402
from regurgitate.generators.settings import ApiSettings  # noqa: E402

FAULTS = ["429", "500", "529", "slow", "malformed", "drop", "refusal", "preamble"]


def distinct_sources(n: int) -> list[str]:
    rng, found = random.Random(0), {}
    while len(found) < n:
        found[toy_pair(rng)[0] + f" {len(found)}"] = None
    return list(found)


def generate(config: dict, sources: list[str]):
    api_generator = ApiGenerator(ApiSettings.from_config("bench", config), progress=False)
    started = time.monotonic()
    rows = api_generator.translate(sources)
    return rows, api_generator.account, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--latency", type=float, default=0.2)
    args = parser.parse_args()
    os.environ["BENCH_API_KEY"] = "sk-bench"
    sources = distinct_sources(args.rows)
    for backend in ("openai", "anthropic"):
        with tempfile.TemporaryDirectory() as cache, fake_api(latency=args.latency) as api:
            config = {
                "backend": backend,
                "model": "bench",
                "base_url": f"{api.url}/v1" if backend == "openai" else api.url,
                "api_key_env": "BENCH_API_KEY",
                "cache_dir": cache,
                "timeout": 2.0,
                "backoff_seconds": 0.1,
            }
            settings = ApiSettings.from_config("bench", config)
            rows, account, seconds = generate(config, sources)
            assert [r.target for r in rows] == [toy_translation(s) for s in sources]
            print(
                f"{backend}: {len(rows)} rows at concurrency {settings.concurrency}, "
                f"{args.latency * 1000:.0f} ms latency: {account.requests / seconds:.1f} requests/s"
            )
            _, account, _ = generate(config, sources)
            print(f"{backend}: a full re-run sent {account.requests} requests")

            faulty = distinct_sources(args.rows + len(FAULTS))[args.rows :]
            api.faults = {s: [f] for s, f in zip(faulty, FAULTS, strict=True)}
            api.requests.clear()
            rows, account, seconds = generate(config, faulty)
            for fault, source, row in zip(FAULTS, faulty, rows, strict=True):
                print(
                    f"  fault {fault:>9}: {api.requests[source]} requests, "
                    f"{api.answered[source]} answered, target {row.target!r}, flags {row.flags}"
                )
            print(f"  retries by kind: {account.retries}; {seconds:.1f} s")


if __name__ == "__main__":
    main()
