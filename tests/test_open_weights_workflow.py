"""The tiny study on a tiny open-weight base, end to end through Snakemake on the CPU: E1 (real,
self, a cross-LLM condition, a partial mix, one S1 order) with LoRA and two generations of the
recursion (full fine-tuning and its resume are tested on the job, tests/test_open_weights.py);
and the messages of a missing model folder and a missing extra, before any job runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import polars as pl
import pytest
import yaml

pytest.importorskip("transformers")
pytest.importorskip("peft")

import tiny_hf  # noqa: E402
from conftest import REPO, TINY, run_snakemake, snakemake_command, write_toy_corpus  # noqa: E402

pytestmark = pytest.mark.slow


def open_weights_config(tmp_path, base, translator) -> dict:
    config = yaml.safe_load(TINY.read_text())
    decoding = {"max_new_tokens": 16, "batch_size": 32}
    config["prompts"] = tiny_hf.SHORT_PROMPT
    config["generators"] = {
        "weak": config["generators"]["weak"],
        "llm": {"backend": "huggingface", "model": str(base), "prompt": "short",
                "decoding": decoding},
        "mt": {"backend": "huggingface", "model": str(translator), "decoding": decoding},
    }  # fmt: skip
    config["finetune"] = {
        "base": "llm",
        "sizes": [100],
        "seeds": [1],
        "training": {"max_tokens": 300, "lr": 3e-3, "warmup_steps": 2, "max_steps": 4,
                     "eval_every": 2, "label_smoothing": 0.0},
        "partial": {"generators": ["mt"], "percents": [25]},
        "method": "lora",
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]},
    }  # fmt: skip
    config["mitigations"] = {
        "experiments": ["finetune"], "generators": ["mt"], "metrics": ["confidence"],
        "detector": False, "source_controls": False, "sizes": [100],
    }  # fmt: skip
    config["recursion"] = {
        "experiment": "finetune", "generations": 2, "sizes": [100], "seeds": [1],
        "regimes": ["replace"], "sample_tokens": 200, "tail_max_count": 30,
    }  # fmt: skip
    return config


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    base = tiny_hf.pretrain(tiny_hf.build_causal(root / "causal", hidden=32))
    return base, tiny_hf.build_seq2seq(root / "seq2seq")


def test_e1_and_the_recursion_run_on_an_open_weight_base(tmp_path, models):
    base, translator = models
    config = open_weights_config(tmp_path, base, translator)
    configfile = tmp_path / "open.yaml"
    configfile.write_text(yaml.safe_dump(config))
    workdir = tmp_path / "study"
    write_toy_corpus(workdir / "data" / "corpus.tsv", 1500)
    targets = ["results/tables/finetune.csv", "results/tables/recursion.csv",
               "results/tables/mitigations.csv"]  # fmt: skip
    run_snakemake(workdir, configfile, "--cores", "2", *targets)
    table = pl.read_csv(workdir / "results/tables/finetune.csv")
    assert set(table["condition"]) >= {"real", "self", "gen-mt", "gen-weak", "partial-mt-25",
                                        "ordered-mt-confidence"}  # fmt: skip
    run = workdir / "results/runs/finetune/real/100/1"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["train"]["method"] == "lora" and metrics["train"]["steps"] == 4
    assert not (run / "model").exists()  # temporary: read only by its evaluation
    # `self`: the base's own translations of the student pool, each row flagged as it is (the
    # tiny base, barely trained, often answers with blank lines: `empty`)
    self_data = pl.read_parquet(workdir / "results/synthetic/llm.parquet")
    student = pl.read_parquet(workdir / "results/pools/student.parquet")
    assert self_data["id"].to_list() == student["id"].to_list()
    empty = self_data["flags"].list.contains("empty")
    assert (self_data["target"] == "").to_list() == empty.to_list()
    assert self_data["logprob"].is_not_null().all()
    recursion = pl.read_csv(workdir / "results/tables/recursion.csv")
    assert set(recursion["generation"].drop_nulls()) == {0, 1, 2}
    generation = workdir / "results/recursion/replace/2/100/1/model"
    assert (generation / "adapter_config.json").exists()
    assert not list(generation.glob("model*.safetensors"))  # LoRA keeps only its adapter


def test_a_missing_model_folder_stops_the_job_naming_it(tmp_path, models):
    config = open_weights_config(tmp_path, tmp_path / "absent", models[1])
    configfile = tmp_path / "open.yaml"
    configfile.write_text(yaml.safe_dump(config))
    workdir = tmp_path / "study"
    write_toy_corpus(workdir / "data" / "corpus.tsv", 1500)
    result = run_snakemake(workdir, configfile, "--cores", "1", "results/synthetic/llm.parquet",
                           check=False)  # fmt: skip
    assert result.returncode != 0
    log = (workdir / "logs/generate_synthetic/llm.log").read_text()
    assert f"generators.llm: the model directory {tmp_path / 'absent'} does not exist" in log


def test_a_study_without_the_extra_fails_before_any_job(tmp_path, models):
    config = open_weights_config(tmp_path, *models)
    configfile = tmp_path / "open.yaml"
    configfile.write_text(yaml.safe_dump(config))
    workdir = tmp_path / "study"
    write_toy_corpus(workdir / "data" / "corpus.tsv", 300)
    # Snakemake where transformers and peft cannot be imported, as without the extra.
    hide = "import sys; sys.modules['transformers'] = sys.modules['peft'] = None; "
    command = snakemake_command(configfile, "--cores", "1")
    run = hide + f"sys.argv = {command[2:]!r}; from snakemake.cli import main; main()"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    result = subprocess.run(
        [sys.executable, "-c", run], cwd=workdir, capture_output=True, text=True, env=env
    )
    assert result.returncode != 0
    assert 'pip install "torch==2.13.0" -e ".[llm]"' in result.stdout + result.stderr
    assert not (workdir / "results").exists()
