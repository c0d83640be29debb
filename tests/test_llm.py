"""API generators through the real `openai` and `anthropic` clients, against a local server that
speaks their wire protocols and injects faults (tests/fake_api.py)."""

import asyncio
import contextlib
import importlib
import json
import multiprocessing
import os
import random
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time

import openai
import polars as pl
import pytest
from conftest import REPO
from fake_api import REFUSAL, fake_api, toy_translation
from toy import toy_pair

from regurgitate.generators.cache import Cache
from regurgitate.generators.cleaning import clean_output, looks_wrapped, output_flags
from regurgitate.generators.llm import SAME_FAILURES_TO_STOP, ApiGenerator, BudgetExceeded
from regurgitate.generators.openai_backend import OpenAIBackend
from regurgitate.generators.prompts import resolve_prompt
from regurgitate.generators.retry import ApiError, Retrier
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
    """A generator's configuration; `api` is the test server, or None with a `base_url`."""
    url = api.url if api else None
    return {
        "backend": backend,
        "model": "test-model",
        "base_url": f"{url}/v1" if backend == "openai" else url,
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
        translate_pool_by_api(
            name="g",
            generator=config,
            prompts=None,
            pool_path=pool,
            out=tmp_path / "g.parquet",
            cost_out=tmp_path / "g.json",
        )
    api.faults = {texts[0]: ["echo"]}
    with pytest.raises(ApiError) as failed, job(tmp_path / "logs" / "echo.log"):
        config = generator(api, "anthropic", tmp_path, max_retries=1)
        translate_pool_by_api(
            name="h",
            generator=config,
            prompts=None,
            pool_path=pool,
            out=tmp_path / "h.parquet",
            cost_out=tmp_path / "h.json",
        )
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
        # whatever was answered before the kill is kept; only requests in flight and the
        # answers of the commit under way (at most one per worker beyond those) are lost
        assert len(first) - len(cached) <= 2 * 4
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


# Answers as chat models wrap them: a template around the translation {t} of the source {s},
# and the clean target expected from it.
WRAPPED = [
    ('"{t}', "{t}"),
    ('{t}"', "{t}"),
    ('Here is the translation: "{t}', "{t}"),
    ('Here is the translation: {t}"', "{t}"),
    ('Here is the translation: "{t}"', "{t}"),
    ('Here\'s the English translation:\n\n"{t}"', "{t}"),
    ("Sure! Here is the translation:\n{t}", "{t}"),
    ("Translation: {t}", "{t}"),
    ("**Translation:** {t}", "{t}"),
    ("English: {t}", "{t}"),
    ("“{t}”", "{t}"),
    ("„{t}“", "{t}"),
    ("«{t}»", "{t}"),
    ("« {t} »", "{t}"),
    ("»{t}«", "{t}"),
    ("‘{t}’", "{t}"),
    ("'{t}'", "{t}"),
    ("‚{t}‘", "{t}"),
    ("“{t}", "{t}"),
    ('"{t}".', "{t}."),
    ('{t}\n\nNote: "schläft" can also mean "is sleeping".', "{t}"),
    ('{t} (Literally: "The cat is sleeping on the sofa.")', "{t}"),
    ("```\n{t}\n```", "{t}"),
    ("German: {s}\nEnglish: {t}", "{t}"),
    ("Certainly.\n\n{t}", "{t}"),
    ('The translation is: "{t}"', "{t}"),
    ('"{t}"\n\n(This is a literal translation.)', "{t}"),
    ("> {t}", "{t}"),
    ("**{t}**", "{t}"),
    ("Translated into English, this reads: {t}", "{t}"),
    ('"{t}" (or: "The cat is sleeping on the couch.")', "{t}"),
    ('Sure, here it is:\n\n**"{t}"**', "{t}"),
    ("{t} This translation keeps the informal register.", "{t}"),
    ("{t}'", "{t}"),
]
SOURCE, TARGET = "Die Katze schläft auf dem Sofa.", "The cat sleeps on the sofa."
# Targets that only look wrapped: cleaning leaves them as they are, and flags none.
KEPT = [
    ("„Nein“, sagte er.", '"No," he said.'),
    ("Er sagte: „Nein.“", 'He said: "No."'),
    ("„Wir müssen handeln.“", '"We must act."'),
    ("Er sagte „hallo“ zu mir.", 'He said "hello" to me.'),
    ("Die Bücher der Studenten sind hier.", "The students' books are here."),
    ("Das sind die Bücher der Lehrer", "Those are the teachers'"),
    ("Die Musik der 90er ist beliebt.", "'90s music is popular."),
    ("Herr Präsident: Ich stimme zu.", "Mr President: I agree."),
    ("Hier ist der Bericht.", "Here is the report."),
    (
        "Bitte beachten Sie, dass die Abstimmung morgen ist.",
        "Please note that the vote is tomorrow.",
    ),
    ("Die Übersetzung ist schlecht.", "The translation is bad."),
    ("Okay.", "Okay."),
    ("Sicher!", "Sure!"),
    ("- (DE) Herr Präsident!", "- (DE) Mr President!"),
]
# What cleaning cannot safely take off: kept, and flagged `wrapped`.
FLAGGED = [
    ("{t}\nThe dog runs.", "{t}"),  # a second line that may be half the translation
    ("Here is my attempt: {t}", "Here is my attempt: {t}"),
    ('"{t}," she said, "{t}', '{t}," she said, "{t}'),
    ("{t}:", "{t}:"),
]
PROMPT = resolve_prompt(None, "default", None)


def test_cleaning_takes_every_wrapper_off():
    assert len(WRAPPED) >= 20
    for template, expected in WRAPPED:
        raw = template.format(t=TARGET, s=SOURCE)
        clean = clean_output(raw, SOURCE, PROMPT)
        assert clean == expected.format(t=TARGET), raw
        assert output_flags(raw, clean, "stop", PROMPT, SOURCE) == [], raw
    for source, target in KEPT:
        assert clean_output(target, source, PROMPT) == target
        assert output_flags(target, target, "stop", PROMPT, source) == [], target
    for template, expected in FLAGGED:
        raw = template.format(t=TARGET, s=SOURCE)
        clean = clean_output(raw, SOURCE, PROMPT)
        assert clean == expected.format(t=TARGET)
        assert looks_wrapped(raw, clean, SOURCE, PROMPT), raw


@pytest.mark.parametrize("backend", ["openai", "anthropic"])
def test_wrapped_answers_are_cleaned_or_flagged_and_counted(api, backend, tmp_path):
    shapes = WRAPPED + FLAGGED
    texts = sources(len(shapes) + 5)
    api.faults = {text: [f"wrap:{shape[0]}"] for text, shape in zip(texts, shapes, strict=False)}
    pool = tmp_path / "pool.parquet"
    pl.DataFrame({"id": [str(i) for i in range(len(texts))], "source": texts}).write_parquet(pool)
    config = generator(api, backend, tmp_path)
    with job(tmp_path / "g.log"):
        record = translate_pool_by_api(
            name="g",
            generator=config,
            prompts=None,
            pool_path=pool,
            out=tmp_path / "g.parquet",
            cost_out=tmp_path / "g.json",
        )
    table = pl.read_parquet(tmp_path / "g.parquet")
    for i, text in enumerate(texts):
        expected = shapes[i][1] if i < len(shapes) else "{t}"
        assert table["target"][i] == expected.format(t=toy_translation(text)), shapes[i]
        assert list(table["flags"][i]) == (["wrapped"] if len(WRAPPED) <= i < len(shapes) else [])
    assert record["flags"] == {"wrapped": len(FLAGGED)}
    assert json.loads((tmp_path / "g.json").read_text())["flags"] == {"wrapped": len(FLAGGED)}
    assert f"wrapped {len(FLAGGED)}" in (tmp_path / "g.log").read_text()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("backend", ["openai", "anthropic"])
@pytest.mark.parametrize("where", ["refused", "dns"])
def test_unreachable_server_fails_within_seconds_naming_it(backend, where, tmp_path):
    url = f"http://127.0.0.1:{free_port()}" if where == "refused" else "http://no-such-host.invalid"
    url += "/v1" if backend == "openai" else ""
    # the defaults: eight retries a row from 1 s up, which would take hours over 300 rows
    config = {**generator(None, backend, tmp_path, base_url=url), "backoff_seconds": 1.0}
    importlib.import_module(f"regurgitate.generators.{backend}_backend")  # not part of the time
    started = time.monotonic()
    with pytest.raises(ApiError) as error:
        run(config, sources(300))
    assert time.monotonic() - started < 10
    message = str(error.value)
    assert f"cannot reach {url}" in message and "generators.g.base_url" in message
    assert ("connection refused" if where == "refused" else "does not resolve") in message
    assert "0 were answered in this run" in message and "were never requested" in message


async def refused_connection():
    """What the official client raises for a port nothing listens on: a real refusal."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there
    client = openai.AsyncOpenAI(
        api_key="test", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0
    )
    async with client:
        await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])


def test_a_refused_connection_is_retried_once_the_server_was_reached():
    """A server that answered before and now refuses is restarting, perhaps: retried."""
    retrier = Retrier(OpenAIBackend.transient, str, max_retries=2, backoff_seconds=0.01)

    async def call():
        await refused_connection()

    with pytest.raises(ApiError, match="cannot reach") as first:
        asyncio.run(retrier(call, "row"))
    assert first.value.fatal and retrier.requests == 1
    retrier.reached = True
    with pytest.raises(ApiError, match="after 3 attempts") as later:
        asyncio.run(retrier(call, "row"))
    assert not later.value.fatal and retrier.retries == {"connection": 2}


def failed_and_never_requested(message: str) -> tuple[int, int]:
    """The counts a stop message gives. They are the client's: the server may not yet have
    counted a request that was in flight when the run stopped."""
    counted = re.search(r"(\d+) failed and (\d+) were never requested", message)
    assert counted, message
    return int(counted[1]), int(counted[2])


@pytest.mark.parametrize("backend", ["openai", "anthropic"])
def test_wrong_model_stops_with_a_true_count(api, backend, tmp_path):
    api.missing_models = {"no-such-model"}
    texts = sources(120)
    config = generator(api, backend, tmp_path, model="no-such-model", concurrency=4)
    with pytest.raises(ApiError) as error:
        run(config, texts)
    message = str(error.value)
    assert "404" in message and "every further request would fail" in message
    failed, never = failed_and_never_requested(message)
    assert (
        f"0 were answered in this run, 0 came from the cache, {failed} failed and {never} were "
        "never requested" in message
    )
    assert 1 <= failed <= 4 and failed + never == 120  # a 404 is not retried, and stops all
    assert sum(api.requests.values()) <= failed


def test_a_fatal_error_cancels_requests_in_flight(api, tmp_path):
    """Every further request would fail: a request that hangs does not hold the stop."""
    api.missing_models, api.slow_seconds = {"no-such-model"}, 20.0
    texts = sources(40)
    api.faults = {texts[0]: ["slow"]}
    config = generator(api, "openai", tmp_path, model="no-such-model", concurrency=4, timeout=30)
    started = time.monotonic()
    with pytest.raises(ApiError, match="404") as error:
        run(config, texts)
    assert time.monotonic() - started < 10
    failed, never = failed_and_never_requested(str(error.value))
    assert failed + never == 40
    assert sum(api.requests.values()) <= failed <= 4


@pytest.mark.parametrize("fault", ["400", "500"])
def test_the_same_failure_row_after_row_stops_the_run(api, fault, tmp_path):
    """A failure every row meets (a rejected parameter; a server error that outlasts every
    retry) stops the run after a few rows instead of going through all of them."""
    texts = sources(60)
    api.default_fault = fault
    config = generator(api, "openai", tmp_path, concurrency=3, max_retries=2)
    with pytest.raises(ApiError) as error:
        run(config, texts)
    rows = len(api.requests)
    assert SAME_FAILURES_TO_STOP <= rows < SAME_FAILURES_TO_STOP + 3
    attempts = 1 if fault == "400" else 3  # rows waiting to retry when it stops give up
    assert sum(n == attempts for n in api.requests.values()) >= SAME_FAILURES_TO_STOP
    assert max(api.requests.values()) == attempts
    message = str(error.value)
    assert f"the same failure for {SAME_FAILURES_TO_STOP} rows in a row" in message
    assert f"{rows} failed and {60 - rows} were never requested" in message

    api.default_fault = None  # the fault is gone: a re-run asks for every row, and all succeed
    fixed, account = run(config, texts)
    assert account.answered == 60 and [r.target for r in fixed] == [
        toy_translation(t) for t in texts
    ]


def cached_spend(tmp_path) -> tuple[int, float]:
    with sqlite3.connect(tmp_path / "cache" / "cache.sqlite") as db:
        rows, spent = db.execute("SELECT count(*), coalesce(sum(cost), 0) FROM answers").fetchone()
    return rows, spent


def test_budget_goes_on_while_one_more_request_fits(api, tmp_path):
    """The issue's case: each request in flight holds ~0.6 of a budget of 1.0 while an answer
    costs ~0.03; the run goes on until not even one request fits, then says what it spent."""
    texts = sources(60)
    config = generator(
        api, "openai", tmp_path, prices={"input": 1000, "output": 2000}, budget=1.0,
        concurrency=4, sampling={"max_tokens": 250},
    )  # fmt: skip
    settings = ApiSettings.from_config("g", config)
    hold = max(settings.cost(settings.estimate_input_tokens(t), 250) for t in texts)
    assert 0.55 < hold < 0.65
    with pytest.raises(BudgetExceeded) as error:
        run(config, texts)
    paid, spent = cached_spend(tmp_path)
    assert paid == sum(api.answered.values()) and spent <= 1.0
    assert 1.0 - spent < hold  # no room was left for one more request
    assert paid >= 10  # not one row and a stop, as when in-flight reservations ended the run
    message = str(error.value)
    assert f"the answers cost {spent:.4f}" in message and f"this run spent {spent:.4f}" in message
    assert f"{paid} were answered in this run" in message
    assert f"0 failed and {60 - paid} were never requested" in message


@pytest.mark.parametrize("backend", ["openai", "anthropic"])
def test_batch_submits_only_what_the_budget_covers(api, backend, tmp_path):
    texts = sources(100)
    prices = {"input": 1000, "output": 2000}
    config = generator(
        api, backend, tmp_path, prices=prices, budget=1.0, batch=True, batch_poll_seconds=0.01,
        sampling={"max_tokens": 20},
    )  # fmt: skip
    settings = ApiSettings.from_config("g", config)
    worst = [
        settings.cost(settings.estimate_input_tokens(t), 20, batch=True) for t in texts
    ]  # fmt: skip
    covered = next(i for i in range(101) if i == 100 or sum(worst[: i + 1]) > 1.0)
    with pytest.raises(BudgetExceeded) as error:
        run(config, texts)
    paid, spent = cached_spend(tmp_path)
    assert paid == covered == sum(api.answered.values()) and 5 < covered < 100
    assert spent <= 1.0
    message = str(error.value)
    assert f"({100 - covered} left out) and spent {spent:.4f}" in message
    assert f"{covered} were answered in this run ({covered} by batch)" in message
    assert f"{100 - covered} were never requested" in message

    # a re-run with the same budget sends what the money left over covers; a higher one the rest
    with pytest.raises(BudgetExceeded):
        run(config, texts)
    more, spent = cached_spend(tmp_path)
    assert more > paid and spent <= 1.0
    rows, account = run({**config, "budget": 100.0}, texts)
    assert account.batch_rows == 100 - more and account.cached_rows == more
    assert max(api.answered.values()) == 1 and len(api.batches) == 3
    assert [row.target for row in rows] == [toy_translation(t) for t in texts]


def test_batch_sent_before_the_budget_changed_is_polled_not_sent_again(api, tmp_path):
    """A restart finds the batch it sent even where its rows are no longer those the budget
    would choose now (a budget raised while the batch ran)."""
    texts = sources(40)
    config = generator(
        api, "openai", tmp_path, prices={"input": 1000, "output": 2000}, budget=1.0,
        batch=True, batch_poll_seconds=0.01, sampling={"max_tokens": 20},
    )  # fmt: skip
    api.polls_to_finish = 10**9
    interrupted = ApiGenerator(ApiSettings.from_config("g", config), progress=False)

    async def stop_while_polling():
        task = asyncio.create_task(interrupted._translate(texts, lambda text: text))
        while not api.polls:
            await asyncio.sleep(0.01)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(stop_while_polling())
    (state,) = (tmp_path / "cache" / "batches").glob("*.json")
    first = json.loads(state.read_text())
    assert len(first["keys"]) < 40 and first["worst_case"] <= 1.0
    api.polls_to_finish = 1
    rows, account = run({**config, "budget": 100.0}, texts)
    assert len(api.batches) == 2 and max(api.answered.values()) == 1
    assert account.batch_rows == 40
    assert [row.target for row in rows] == [toy_translation(t) for t in texts]


def test_a_failed_commit_is_raised_not_lost(tmp_path):
    """The writer thread's errors reach the run: the next put() and close() raise them."""
    from regurgitate.generators.cache import Writer

    async def write(writer):
        await writer.put(("too", "short"))  # a row the table cannot take
        await asyncio.sleep(0.2)  # the commit fails meanwhile
        await writer.put(("another", "row"))

    with pytest.raises(sqlite3.Error), Writer(tmp_path / "cache.sqlite") as writer:
        asyncio.run(write(writer))
    writer = Writer(tmp_path / "cache.sqlite")
    asyncio.run(writer.put(("too", "short")))
    with pytest.raises(sqlite3.Error):
        writer.close()


def open_new_cache(path, barrier) -> None:
    barrier.wait(timeout=30)
    Cache(path).close()  # an error here exits the process with code 1


@pytest.mark.slow  # 200 processes
def test_parallel_jobs_open_one_new_cache_at_once(tmp_path):
    """Snakemake runs an API generator's generate_synthetic and evaluate_generator side by side,
    and both open the same cache file, new on a first run."""
    context = multiprocessing.get_context("fork")
    exit_codes = []
    for trial in range(50):
        barrier = context.Barrier(4)
        path = tmp_path / str(trial) / "cache.sqlite"
        workers = [context.Process(target=open_new_cache, args=(path, barrier)) for _ in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        exit_codes += [worker.exitcode for worker in workers]
    assert exit_codes == [0] * 200
