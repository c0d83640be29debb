"""Throughput, re-run cost and fault handling of the API generators, against the local server of
the tests (tests/fake_api.py: the OpenAI and Anthropic wire protocols, real clients).

    PYTHONPATH=src python benchmarks/llm_throughput.py [--rows 400] [--latency 0.2] [--rounds 3]

1. Throughput side by side: the openai generator (cache, retries, accounting; a fresh cache each
   round, so every row is a request) against a bare official AsyncOpenAI loop (as many workers as
   the concurrency, the same request bodies, nothing kept), alternating which goes first, against
   one server in a process of its own; the median over rounds of the per-round ratio.
2. Re-runs (every row from the cache) and one row of each fault, on both backends.
3. Time to fail on a server that cannot be reached (a port with nothing listening).
4. A batch with a budget that covers part of the rows: what it spent against the budget.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path.insert(0, str(TESTS))

import openai  # noqa: E402
from common import write_result  # noqa: E402
from fake_api import fake_api, toy_translation  # noqa: E402
from toy import toy_pair  # noqa: E402

from regurgitate.generators.llm import ApiGenerator, BudgetExceeded  # noqa: E402
from regurgitate.generators.openai_backend import OpenAIBackend  # noqa: E402
from regurgitate.generators.retry import ApiError  # noqa: E402
from regurgitate.generators.settings import ApiSettings  # noqa: E402

FAULTS = ["429", "500", "529", "slow", "malformed", "drop", "refusal", "preamble"]
KEY = "sk-bench"


def distinct_sources(n: int, salt: str = "") -> list[str]:
    rng, found = random.Random(0), {}
    while len(found) < n:
        found[toy_pair(rng)[0] + f" {salt}{len(found)}"] = None
    return list(found)


def generator_config(backend: str, url: str, cache: str, **overrides) -> dict:
    return {
        "backend": backend,
        "model": "bench",
        "base_url": f"{url}/v1" if backend == "openai" else url,
        "api_key_env": "BENCH_API_KEY",
        "cache_dir": cache,
        "timeout": 2.0,
        "backoff_seconds": 0.1,
        **overrides,
    }


def generate(config: dict, sources: list[str]):
    api_generator = ApiGenerator(ApiSettings.from_config("bench", config), progress=False)
    started = time.monotonic()
    rows = api_generator.translate(sources)
    return rows, api_generator.account, time.monotonic() - started


@contextlib.contextmanager
def server_process(latency: float) -> Iterator[str]:
    """The test server in an interpreter of its own, as a real server would be."""
    env = dict(os.environ, PYTHONPATH=f"{TESTS}:{os.environ.get('PYTHONPATH', '')}")
    command = [sys.executable, str(TESTS / "fake_api.py"), "--latency", str(latency)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    try:
        yield server.stdout.readline().strip()
    finally:
        server.terminate()
        server.wait()


async def bare_loop(url: str, sources: list[str], settings: ApiSettings) -> float:
    """What a researcher would write, at its fastest: the official client and as many workers as
    the concurrency, each taking the next source as it finishes one; nothing kept or retried."""
    client = openai.AsyncOpenAI(api_key=KEY, base_url=f"{url}/v1", max_retries=0, timeout=60)
    backend = OpenAIBackend(settings, KEY)  # only to make the same bodies
    bodies = [backend.body(source) for source in sources]
    await backend.close()
    texts: list[str | None] = [None] * len(bodies)
    todo = iter(enumerate(bodies))

    async def worker() -> None:
        for i, body in todo:
            response = await client.chat.completions.create(**body)
            texts[i] = response.choices[0].message.content

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(settings.concurrency)))
    seconds = time.monotonic() - started
    await client.close()
    assert texts == [toy_translation(s) for s in sources]
    return seconds


def measure(side: str, url: str, sources: list[str], concurrency: int) -> float:
    """Requests a second of one side, with a cache of its own."""
    with tempfile.TemporaryDirectory() as cache:
        config = generator_config("openai", url, cache, concurrency=concurrency)
        if side == "project":
            rows, account, seconds = generate(config, sources)
            assert account.requests == len(sources)
            assert [r.target for r in rows] == [toy_translation(s) for s in sources]
        else:
            settings = ApiSettings.from_config("bench", config)
            seconds = asyncio.run(bare_loop(url, sources, settings))
    return len(sources) / seconds


def side_by_side(args) -> dict:
    rounds = []
    with server_process(args.latency) as url:
        for side in ("project", "bare"):  # a warm-up: imports, first connections
            measure(side, url, distinct_sources(args.concurrency * 2, salt="w-"), args.concurrency)
        for number in range(args.rounds):
            sources = distinct_sources(args.rows, salt=f"r{number}-")
            rates = {}
            order = ["project", "bare"] if number % 2 == 0 else ["bare", "project"]
            for side in order:
                rates[side] = measure(side, url, sources, args.concurrency)
            rates["ratio"] = rates["project"] / rates["bare"]
            rounds.append(rates)
            print(
                f"round {number + 1}: generator {rates['project']:.1f} requests/s, bare "
                f"AsyncOpenAI {rates['bare']:.1f} requests/s, ratio {rates['ratio']:.3f}",
                flush=True,
            )
    ratio = statistics.median(r["ratio"] for r in rounds)
    print(
        f"openai, {args.rows} rows at concurrency {args.concurrency}, {args.latency * 1000:.0f} ms "
        f"latency: generator / bare client = {ratio:.3f} (median of {args.rounds} rounds)"
    )
    return {"rounds": rounds, "median_ratio": ratio}


def reruns_and_faults(args) -> None:
    sources = distinct_sources(args.rows)
    for backend in ("openai", "anthropic"):
        with tempfile.TemporaryDirectory() as cache, fake_api(latency=args.latency) as api:
            config = generator_config(backend, api.url, cache)
            rows, account, seconds = generate(config, sources)
            assert [r.target for r in rows] == [toy_translation(s) for s in sources]
            print(
                f"{backend}: {len(rows)} rows, server in this process: "
                f"{account.requests / seconds:.1f} requests/s"
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


def unreachable() -> dict:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    seconds = {}
    for backend in ("openai", "anthropic"):
        with tempfile.TemporaryDirectory() as cache:
            # the default backoff: 8 retries a row from 1 s up
            config = generator_config(backend, url, cache, backoff_seconds=1.0)
            started = time.monotonic()
            try:
                generate(config, distinct_sources(300))
            except ApiError as err:
                seconds[backend] = time.monotonic() - started
                print(
                    f"{backend}: 300 rows, unreachable server: failed in {seconds[backend]:.2f} s"
                )
                print(f"  {str(err)[:200]}...")
    return seconds


def batch_budget(budget: float = 1.0) -> dict:
    sources = distinct_sources(100)
    spent = {}
    for backend in ("openai", "anthropic"):
        with tempfile.TemporaryDirectory() as cache, fake_api() as api:
            config = generator_config(
                backend, api.url, cache, prices={"input": 1000, "output": 2000}, budget=budget,
                batch=True, batch_poll_seconds=0.01, sampling={"max_tokens": 20},
            )  # fmt: skip
            generator = ApiGenerator(ApiSettings.from_config("bench", config), progress=False)
            with contextlib.suppress(BudgetExceeded):
                generator.translate(sources)
            account = generator.account
            submitted = sum(api.answered.values())
            spent[backend] = {"budget": budget, "rows": submitted, "spent": account.batch_spent}
            print(
                f"{backend}: batch of {len(sources)} rows, budget {budget}: submitted "
                f"{submitted} rows, spent {account.batch_spent:.4f}"
            )
    return spent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ["BENCH_API_KEY"] = KEY
    logging.basicConfig(level=logging.ERROR)  # each retry's warning is expected here
    result = {"args": vars(args), "throughput": side_by_side(args)}
    reruns_and_faults(args)
    result["seconds_to_fail_unreachable"] = unreachable()
    result["batch_budget"] = batch_budget()
    print(f"written to {write_result('llm_throughput.json', result)}")


if __name__ == "__main__":
    main()
