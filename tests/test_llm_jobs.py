"""E1 through the OpenAI fine-tuning API, the cost estimate, the configuration of API generators,
and the workflow with an API generator (tests/fake_api.py plays the provider)."""

import copy
import json
import random

import polars as pl
import pytest
import yaml
from conftest import REPO, run_snakemake, write_toy_corpus
from fake_api import fake_api, toy_translation
from toy import toy_pair

from regurgitate.generators import estimate
from regurgitate.generators.openai_finetune import FineTuneError, finetune
from regurgitate.io import write_json
from regurgitate.jobs.evaluate import evaluate_finetuned_api
from regurgitate.study.config import ConfigError, check_config

KEY = "sk-test-jobs-SECRET-42"
TINY = REPO / "tests" / "config" / "tiny.yaml"


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("TEST_API_KEY", KEY)


@pytest.fixture
def api():
    with fake_api() as server:
        yield server


def pairs(n: int, seed: int = 0) -> pl.DataFrame:
    rng = random.Random(seed)
    rows = [toy_pair(rng) for _ in range(n)]
    return pl.DataFrame(
        {"id": [f"p{i}" for i in range(n)], "source": [r[0] for r in rows],
         "target": [r[1] for r in rows]}
    )  # fmt: skip


def openai_generator(api, tmp_path) -> dict:
    return {
        "backend": "openai",
        "model": "gpt-test",
        "base_url": f"{api.url}/v1",
        "api_key_env": "TEST_API_KEY",
        "backoff_seconds": 0.02,
        "cache_dir": str(tmp_path / "cache"),
    }


def test_finetune_uploads_trains_and_resumes_without_paying_again(api, tmp_path):
    curriculum = pairs(20)
    state = tmp_path / "run" / "finetune.json"
    config = openai_generator(api, tmp_path)
    record = finetune(curriculum, "gpt", config, None, 3, state, poll_seconds=0.01)
    assert record["fine_tuned_model"].startswith("ft:gpt-test:")
    assert record["status"] == "succeeded" and record["rows"] == 20
    assert json.loads(state.read_text()) == record
    job = api.jobs[record["job_id"]]
    assert job["seed"] == 3 and job["training_file"] == record["file_id"]
    uploaded = [json.loads(line) for line in api.files[record["file_id"]].decode().splitlines()]
    assert [chat["messages"][-1]["content"] for chat in uploaded] == curriculum["target"].to_list()
    assert uploaded[0]["messages"][1] == {"role": "user", "content": curriculum["source"][0]}
    assert state.with_suffix(".jsonl").read_text().count("\n") == 20

    # a restart after the job was created: it polls the same job, uploads nothing
    interrupted = {k: v for k, v in record.items() if k not in ("fine_tuned_model", "status")}
    state.write_text(json.dumps(interrupted))
    files, jobs = len(api.files), len(api.jobs)
    again = finetune(curriculum, "gpt", config, None, 3, state, poll_seconds=0.01)
    assert again["fine_tuned_model"] == record["fine_tuned_model"]
    assert (len(api.files), len(api.jobs)) == (files, jobs)

    with pytest.raises(FineTuneError, match="finetune.json"):
        finetune(pairs(21), "gpt", config, None, 3, state, poll_seconds=0.01)

    test = tmp_path / "test.parquet"
    pairs(30, seed=1).with_columns(
        target=pl.col("source").map_elements(toy_translation, return_dtype=pl.String)
    ).write_parquet(test)
    write_json(record, tmp_path / "model.json")
    metrics = evaluate_finetuned_api(
        record_path=tmp_path / "model.json",
        name="gpt",
        generator=config,
        prompts=None,
        test_path=test,
        labels={"condition": "real", "size": 20, "seed": 3},
        metrics_out=tmp_path / "metrics.json",
        hypotheses_out=tmp_path / "test.hyp.txt",
    )
    assert metrics["bleu"] == pytest.approx(100.0) and metrics["size"] == 20
    assert api.models[record["fine_tuned_model"]] == 30
    assert (
        json.loads((tmp_path / "metrics.json").read_text())["model"] == record["fine_tuned_model"]
    )


def test_estimate_sends_nothing_and_counts_cached_rows(tmp_path, capsys):
    config = yaml.safe_load((REPO / "config" / "paper-llm.yaml").read_text())
    paper = str(REPO / "config" / "paper-llm.yaml")
    # An empty directory: no pools or cache there, so the estimate counts from the config.
    assert estimate.main(["--configfile", paper, "--directory", str(tmp_path), "--json"]) == 0
    rows = {row["generator"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"gpt35", "gpt4o", "claude", "llama"}
    assert rows["gpt4o"]["rows"] == config["pools"]["student"]
    assert rows["gpt4o"]["cost"] > rows["gpt35"]["cost"] > 0 == rows["llama"]["cost"]
    assert rows["gpt4o"]["batch"] and not rows["gpt35"]["batch"]
    assert rows["gpt4o"]["cost_if_batch"] == rows["gpt4o"]["cost"]  # batch: true already
    assert rows["gpt35"]["cost_if_batch"] == pytest.approx(rows["gpt35"]["cost"] / 2, rel=1e-3)

    # with the pool on disk and part of it cached, only the rest is counted
    with fake_api() as api:
        small = {**config, "generators": {"api": openai_generator(api, tmp_path)}}
        small["generators"]["api"]["prices"] = {"input": 1.0, "output": 1.0}
        pool = pairs(12)
        (tmp_path / "results" / "pools").mkdir(parents=True)
        pool.write_parquet(tmp_path / "results" / "pools" / "student.parquet")
        from regurgitate.generators.llm import ApiGenerator
        from regurgitate.generators.settings import ApiSettings

        settings = ApiSettings.from_config("api", small["generators"]["api"])
        ApiGenerator(settings, progress=False).translate(pool["source"].to_list()[:5])
        sent = sum(api.requests.values())
        (row,) = estimate.estimate(small, tmp_path, ["student"], 25)
        assert sum(api.requests.values()) == sent == 5
    first = set(pool["source"].to_list()[:5])
    assert (row["rows"], row["cached"]) == (12, sum(s in first for s in pool["source"]))
    assert row["cost"] > 0


def tiny_config() -> dict:
    return yaml.safe_load(TINY.read_text())


@pytest.mark.parametrize(
    ("mutate", "key"),
    [
        (lambda c: c["generators"]["api"].update(budget=5), "generators.api.budget"),
        (lambda c: c["generators"]["api"].update(prompt="paper"), "generators.api.prompt"),
        (lambda c: c["generators"]["api"].update(prompt_version=2), "generators.api.prompt"),
        (
            lambda c: c["generators"]["api"].update(tokens_per_minute=10),
            "generators.api.tokens_per_minute",
        ),
        (
            lambda c: c["generators"]["api"].update(backend="anthropic", sampling={"seed": 1}),
            "generators.api.sampling.seed",
        ),
    ],
)
def test_api_generator_config_errors_name_the_key(mutate, key):
    config = tiny_config()
    config["generators"]["api"] = {"backend": "openai", "model": "gpt-x"}
    check_config(copy.deepcopy(config))
    mutate(config)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        check_config(config)


def test_paper_llm_example_is_valid_and_not_the_default():
    from snakemake.utils import validate

    config = yaml.safe_load((REPO / "config" / "paper-llm.yaml").read_text())
    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    check_config(config)
    default = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    assert all(g["backend"] == "local" for g in default["generators"].values())


@pytest.mark.slow
def test_workflow_writes_synthetic_data_of_an_api_generator(tmp_path, api):
    """The generate_synthetic rule with an openai generator: no local model, the usual table,
    a cost file, a re-run that sends nothing, and the key in no file of the working directory."""
    config = tiny_config()
    config["generators"]["api"] = {
        **openai_generator(api, tmp_path),
        "cache_dir": "resources/cache/llm",
        "prices": {"input": 0.5, "output": 1.5},
    }
    configfile = tmp_path / "api.yaml"
    configfile.write_text(yaml.safe_dump(config))
    workdir = tmp_path / "study"
    write_toy_corpus(workdir / "data" / "corpus.tsv", 1500)
    targets = [
        "results/synthetic/api.parquet",
        "results/curricula/gen-api/1.parquet",
        "results/generators/api/metrics.json",
    ]
    run_snakemake(workdir, configfile, "--cores", "2", *targets)
    assert not list(workdir.glob("results/generators/*/model.pt"))  # no model was trained
    student = pl.read_parquet(workdir / "results/pools/student.parquet")
    synthetic = pl.read_parquet(workdir / "results/synthetic/api.parquet")
    assert synthetic["id"].to_list() == student["id"].to_list()
    assert synthetic["target"].to_list() == [toy_translation(s) for s in student["source"]]
    cost = json.loads((workdir / "results/synthetic/api.cost.json").read_text())
    distinct = student["source"].n_unique()
    assert cost["rows"] == 300 and cost["cost"] > 0 and cost["this_run"]["requests"] == distinct
    metrics = json.loads((workdir / "results/generators/api/metrics.json").read_text())
    assert metrics["architecture"] == "openai:gpt-test" and metrics["bleu"] > 0
    test_sources = set(pl.read_parquet(workdir / "results/pools/test.parquet")["source"])
    sent = len(set(student["source"]) | test_sources)
    assert sum(api.requests.values()) == sent

    run_snakemake(workdir, configfile, "--cores", "1", "--force", targets[0])
    assert sum(api.requests.values()) == sent
    cost = json.loads((workdir / "results/synthetic/api.cost.json").read_text())
    assert cost["this_run"]["requests"] == 0 and cost["this_run"]["cached_rows"] == 300
    log = (workdir / "logs/generate_synthetic/api.log").read_text()
    assert "300 from the cache, 0 answered now, 0 failed; 0 requests" in log
    for path in workdir.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


@pytest.mark.slow
def test_workflow_runs_e1_through_the_finetuning_api(tmp_path, api):
    """E1 with an openai base: every (condition, size, seed) is fine-tuned through the API and
    scored through the openai path; a forced re-run pays for nothing again."""
    config = tiny_config()
    config["generators"]["api"] = {
        **openai_generator(api, tmp_path),
        "cache_dir": "resources/cache/llm",
    }
    config["finetune"] = {"base": "api", "sizes": [100], "seeds": [1], "poll_seconds": 0.01}
    config["mitigations"]["experiments"] = ["scratch"]  # E1's own conditions, not S1-S3's
    configfile = tmp_path / "api.yaml"
    configfile.write_text(yaml.safe_dump(config))
    workdir = tmp_path / "study"
    write_toy_corpus(workdir / "data" / "corpus.tsv", 1500)
    run_snakemake(workdir, configfile, "--cores", "2", "results/tables/finetune.csv")
    table = pl.read_csv(workdir / "results/tables/finetune.csv")
    assert set(table["condition"]) == {"real", "self", "gen-weak", "gen-strong"}
    assert not list(workdir.glob("results/runs/finetune/*/*/*/model.pt"))
    record = json.loads((workdir / "results/runs/finetune/real/100/1/model.json").read_text())
    state = workdir / "resources/finetune/real/100/1/job.json"
    assert json.loads(state.read_text())["job_id"] == record["job_id"]
    assert record["fine_tuned_model"].startswith("ft:gpt-test:") and record["rows"] == 100
    metrics = json.loads((workdir / "results/runs/finetune/real/100/1/metrics.json").read_text())
    assert metrics["fine_tuned_model"] == record["fine_tuned_model"] and metrics["bleu"] > 0
    jobs = len(api.jobs)
    # One run forced again (the target first: --forcerun takes every name after it): the others
    # would only repeat it, each with its evaluation.
    target = "results/runs/finetune/real/100/1/model.json"
    run_snakemake(workdir, configfile, "--cores", "2", target, "--forcerun", "finetune_api")
    assert len(api.jobs) == jobs  # the rerun found its job's state and created none
    log = (workdir / "logs/finetune_api/finetune/real/100/1.log").read_text()
    assert "created fine-tuning job" not in log
