"""API generators through the real `openai` and `anthropic` clients, against a local server that
speaks their wire protocols and injects faults (tests/fake_api.py)."""

import asyncio
import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import polars as pl
import pytest
from conftest import REPO
from fake_api import REFUSAL, fake_api, toy_translation
from toy import toy_pair

from regurgitate.generators.llm import ApiGenerator, BudgetExceeded
from regurgitate.generators.retry import ApiError
from regurgitate.generators.settings import ApiSettings, MissingKeyError
from regurgitate.jobs.generate import translate_pool_by_api
from regurgitate.jobs.log import job

KEY = "sk-test-0123456789abcdefSECRET"
FAULTS = {
    0: ["429"],
    1: ["500", "529"],
    2: ["slow"],
    3: ["malformed"],
    4: ["drop"],
    5: ["refusal"],
    6: ["preamble"],
    7: ["429", "drop", "malformed"],
}
RETRIED = {"429": 2, "500": 1, "529": 1, "timeout": 1, "malformed": 2, "connection": 2}


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("TEST_API_KEY", KEY)


@pytest.fixture
def api():
    with fake_api(slow_seconds=2.5, retry_after="1") as server:
        yield server


def sources(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    found: dict[str, None] = {}
    while len(found) < n:
        found[toy_pair(rng)[0]] = None
    return list(found)


def generator(api, backend: str, tmp_path, **overrides) -> dict:
    return {
        "backend": backend,
        "model": "test-model",
        "base_url": f"{api.url}/v1" if backend == "openai" else api.url,
        "api_key_env": "TEST_API_KEY",
        "timeout": 2.0,  # generous: a loaded CI machine must not time out a normal request
        "backoff_seconds": 0.02,
        "cache_dir": str(tmp_path / "cache"),
        "prices": {"input": 1.0, "output": 2.0},
        **overrides,
    }


def run(config: dict, texts: list[str], name: str = "g"):
    api_generator = ApiGenerator(ApiSettings.from_config(name, config), progress=False)
    return api_generator.translate(texts), api_generator.account


@pytest.mark.parametrize("backend", ["openai", "anthropic"])
def test_faults_are_retried_and_every_row_requested_once(api, backend, tmp_path):
    texts = sources(40)
    api.faults = {texts[i]: list(faults) for i, faults in FAULTS.items()}
    started = time.monotonic()
    rows, account = run(generator(api, backend, tmp_path), texts)
    assert time.monotonic() - started >= 1.0  # Retry-After: 1 was honoured
    for i, (text, row) in enumerate(zip(texts, rows, strict=True)):
        expected = REFUSAL if i == 5 else toy_translation(text)
        assert row.target == expected
        assert row.flags == (["refusal"] if i == 5 else [])
        assert row.input_tokens > 0 and row.tokens > 0 and row.cost > 0
        assert api.requests[text] == 1 + len(FAULTS.get(i, [])) - (i in (5, 6))
        assert api.answered[text] == 1
    assert account.retries == RETRIED
    assert account.requests == sum(api.requests.values())
    assert account.cost == pytest.approx(sum(row.cost for row in rows))

    before = sum(api.requests.values())
    again, account = run(generator(api, backend, tmp_path), texts)
    assert sum(api.requests.values()) == before and account.requests == 0
    assert account.cached_rows == len(texts) and account.spent_now == 0
    assert [row.target for row in again] == [row.target for row in rows]


def test_cache_key_holds_everything_that_determines_the_answer(api, tmp_path):
    texts = sources(5)
    run(generator(api, "openai", tmp_path), texts)
    assert sum(api.requests.values()) == 5
    run(generator(api, "openai", tmp_path, concurrency=2, timeout=3), texts)  # same answers
    assert sum(api.requests.values()) == 5
    run(generator(api, "openai", tmp_path, sampling={"temperature": 0.7}), texts)
    run(generator(api, "openai", tmp_path, model="other"), texts)
    assert sum(api.requests.values()) == 15


def test_missing_key_fails_before_any_request(api, tmp_path, monkeypatch):
    monkeypatch.delenv("TEST_API_KEY")
    with pytest.raises(MissingKeyError, match="TEST_API_KEY"):
        run(generator(api, "openai", tmp_path), sources(3))
    assert not api.requests and not (tmp_path / "cache").exists()


def test_key_never_reaches_an_output_file(api, tmp_path):
    """A job that succeeds and one whose server quotes the key in an error: the key is sent
    to the server, and found in no log, table, cost file or cache."""
    texts = sources(30)
    pool = tmp_path / "pool.parquet"
    pl.DataFrame({"id": [f"s{i}" for i in range(30)], "source": texts}).write_parquet(pool)
    api.faults = {texts[0]: ["429"], texts[1]: ["500"]}
    config = generator(api, "openai", tmp_path)
    with job(tmp_path / "logs" / "ok.log"):
        translate_pool_by_api("g", config, None, pool, tmp_path / "g.parquet", tmp_path / "g.json")
    api.faults = {texts[0]: ["echo"]}
    with pytest.raises(ApiError) as failed, job(tmp_path / "logs" / "echo.log"):
        config = generator(api, "anthropic", tmp_path, max_retries=1)
        translate_pool_by_api("h", config, None, pool, tmp_path / "h.parquet", tmp_path / "h.json")
    assert KEY not in str(failed.value) and "[redacted]" in str(failed.value)
    assert KEY in api.keys_seen
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p != pool]
    assert any(p.suffix == ".sqlite" for p in files) and any(p.suffix == ".log" for p in files)
    assert len(files) >= 5
    for path in files:
        assert KEY.encode() not in path.read_bytes(), path
    table = pl.read_parquet(tmp_path / "g.parquet")
    assert table.columns == [
        "id", "source", "target", "logprob", "tokens", "cost", "finish_reason",
        "input_tokens", "flags",
    ]  # fmt: skip
    cost = json.loads((tmp_path / "g.json").read_text())
    assert cost["rows"] == 30 and cost["cost"] == pytest.approx(table["cost"].sum())
    assert cost["this_run"]["retries"] == {"429": 1, "500": 1}


def test_budget_stops_cleanly_and_keeps_what_was_paid(api, tmp_path):
    texts = sources(60)
    # an answer costs ~0.03 (15 input and 8 output tokens at 1000 and 2000 a million), but
    # each request in flight holds ~0.13 (its prompt's estimate and max_tokens) until it answers
    config = generator(
        api, "openai", tmp_path, prices={"input": 1000, "output": 2000}, budget=1.5,
        concurrency=4, sampling={"max_tokens": 20},
    )  # fmt: skip
    with pytest.raises(BudgetExceeded, match="budget"):
        run(config, texts)
    paid = sum(api.answered.values())
    assert 5 <= paid < 60
    with sqlite3.connect(tmp_path / "cache" / "cache.sqlite") as db:
        cached, spent = db.execute("SELECT count(*), sum(cost) FROM answers").fetchone()
    assert cached == paid and 1.0 < spent <= 1.5
    rows, account = run({**config, "budget": 100.0}, texts)
    assert account.cached_rows == paid and account.requests == 60 - paid
    assert max(api.answered.values()) == 1
    assert [row.target for row in rows] == [toy_translation(t) for t in texts]


def test_rate_limit_spreads_requests(api, tmp_path):
    texts = sources(13)
    started = time.monotonic()
    run(generator(api, "openai", tmp_path, requests_per_minute=60), texts)
    # the bucket holds 10 requests; the other 3 come at one a second
    assert time.monotonic() - started >= 2.5


RESUMABLE = """
import sys
from regurgitate.generators.llm import ApiGenerator
from regurgitate.generators.settings import ApiSettings
import json
config, texts = json.load(open(sys.argv[1]))
ApiGenerator(ApiSettings.from_config("g", config), progress=False).translate(texts)
"""


def test_killed_run_resumes_without_loss_or_repeats(tmp_path):
    texts = sources(150)
    with fake_api(latency=0.02) as api:
        config = generator(api, "openai", tmp_path, concurrency=4)
        job_file = tmp_path / "job.json"
        job_file.write_text(json.dumps([config, texts]))
        env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
        child = subprocess.Popen([sys.executable, "-c", RESUMABLE, str(job_file)], env=env)
        deadline = time.monotonic() + 60
        while sum(api.answered.values()) < 40 and time.monotonic() < deadline:
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
        child.wait()
        first = dict(api.requests)
        assert 40 <= len(first) < 150
        with sqlite3.connect(tmp_path / "cache" / "cache.sqlite") as db:
            cached = {row[0] for row in db.execute("SELECT source FROM answers")}
        # whatever was answered before the kill is kept; only requests in flight are lost
        assert len(first) - len(cached) <= 4
        api.requests.clear()
        rows, account = run(config, texts)
        assert set(api.requests) == set(texts) - cached
        assert account.cached_rows == len(cached)
    assert [row.target for row in rows] == [toy_translation(t) for t in texts]


@pytest.mark.parametrize("backend", ["openai", "anthropic"])
def test_batch_interface_and_its_restart(api, backend, tmp_path):
    texts = sources(25)
    api.faults = {texts[0]: ["preamble"]}
    config = generator(api, backend, tmp_path, batch=True, batch_poll_seconds=0.02)
    api.polls_to_finish = 10**9
    settings = ApiSettings.from_config("g", config)
    interrupted = ApiGenerator(settings, progress=False)

    states = tmp_path / "cache" / "batches"

    async def stop_while_polling():
        """Cancel the run (as a kill would stop it) once it has recorded its batch."""
        task = asyncio.create_task(interrupted._translate(texts, lambda text: text))
        deadline = time.monotonic() + 30
        while not any("batch_id" in p.read_text() for p in states.glob("*.json")):
            assert time.monotonic() < deadline and not task.done()
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # a few polls
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(stop_while_polling())
    assert len(api.batches) == 1 and list(states.glob("*.json"))

    api.polls_to_finish = 1
    rows, account = run(config, texts)
    assert len(api.batches) == 1  # the restart polled the batch it had, it sent no other
    assert not list(states.glob("*.json"))
    assert [row.target for row in rows] == [toy_translation(t) for t in texts]
    assert account.batch_rows == 25 and sum(api.answered.values()) == 25
    single = ApiSettings.from_config("g", {**config, "batch": False})
    assert rows[1].cost == pytest.approx(
        single.cost(rows[1].input_tokens, rows[1].tokens) * single.batch_price_factor
    )
    assert run(config, texts)[1].requests == 0


def test_anthropic_refusal_is_flagged_from_the_stop_reason(api, tmp_path):
    texts = sources(3)
    api.faults = {texts[0]: ["refusal"]}
    rows, _ = run(generator(api, "anthropic", tmp_path), texts)
    assert rows[0].flags == ["refusal"] and rows[1].flags == []


def test_logprobs_are_summed_when_asked(api, tmp_path):
    texts = sources(2)
    rows, _ = run(generator(api, "openai", tmp_path, sampling={"logprobs": True}), texts)
    assert rows[0].logprob == pytest.approx(-0.5 * len(toy_translation(texts[0]).split()))
