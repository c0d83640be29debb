"""End to end: the whole DAG on a toy corpus, in a temporary directory."""

import hashlib
import json
import tarfile

import polars as pl
import pytest
import yaml
from conftest import REPO, run_snakemake, serve_directory, write_toy_corpus

pytestmark = pytest.mark.slow


TINY = REPO / "tests" / "config" / "tiny.yaml"


def snakemake(workdir, *args, check=True):
    return run_snakemake(workdir, TINY, "--cores", "2", *args, check=check)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("study")
    write_toy_corpus(workdir / "data" / "corpus.tsv", 1500)
    snakemake(workdir)
    return workdir


def test_table_has_a_row_per_condition_and_size(finished_run):
    table = pl.read_csv(finished_run / "results" / "tables" / "scratch.csv")
    rows = set(zip(table["condition"], table["size"], strict=True))
    assert rows == {(c, s) for c in ("real", "self", "gen-weak") for s in (100, 300)}
    assert (table["n_seeds"] == 2).all()
    assert table["bleu_mean"].is_not_null().all()
    assert (table["bleu_ci_low"] <= table["bleu_mean"]).all()
    assert table["bleu_signature"].str.contains("nrefs:1").all()


def test_figures_exist(finished_run):
    png = finished_run / "results" / "figures" / "scratch.png"
    pdf = finished_run / "results" / "figures" / "scratch.pdf"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pdf.read_bytes()[:4] == b"%PDF"


def test_runs_record_scores_and_training(finished_run):
    metrics = json.loads(
        (finished_run / "results/runs/scratch/real/300/1/metrics.json").read_text()
    )
    assert metrics["condition"] == "real" and metrics["size"] == 300 and metrics["seed"] == 1
    assert metrics["train"]["pairs"] == 300
    assert "version" in metrics["chrf_signature"]
    log = (finished_run / "logs/train_student/scratch/real/300/1.log").read_text()
    assert "target tokens/s" in log and "dev bleu" in log


def test_synthetic_data_and_pools(finished_run):
    student = pl.read_parquet(finished_run / "results/pools/student.parquet")
    synthetic = pl.read_parquet(finished_run / "results/synthetic/weak.parquet")
    assert synthetic.columns[:4] == ["id", "source", "target", "logprob"]
    assert sorted(synthetic["id"]) == sorted(student["id"])
    assert (synthetic["logprob"] <= 0).all()
    report = json.loads((finished_run / "results/pools/cleaning.json").read_text())
    assert report["pools"]["student"] == 300
    generators = pl.read_csv(finished_run / "results/tables/generators.csv")
    assert set(generators["generator"]) == {"weak", "strong"}


def test_rerun_has_nothing_to_do(finished_run):
    result = snakemake(finished_run, "-n")
    assert "Nothing to be done" in result.stdout + result.stderr


def test_broken_corpus_stops_with_file_and_line(tmp_path):
    corpus = write_toy_corpus(tmp_path / "data" / "corpus.tsv", 300)
    lines = corpus.read_text().splitlines()
    lines[6] = lines[6].replace("\t", " ")
    corpus.write_text("\n".join(lines) + "\n")
    result = snakemake(tmp_path, check=False)
    assert result.returncode != 0
    assert "corpus.tsv:7" in result.stdout + result.stderr
    assert not list((tmp_path / "results" / "pools").glob("*.parquet"))


def test_lint_is_clean(tmp_path):
    result = snakemake(tmp_path, "--lint", check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def europarl_config(tmp_path, url: str, sha256: str):
    config = yaml.safe_load(TINY.read_text())
    config["corpus"] = {
        "format": "europarl",
        "url": url,
        "sha256": sha256,
        "de_member": "training/europarl-v7.de-en.de",
        "en_member": "training/europarl-v7.de-en.en",
        "tsv": None,
        "test_tsv": None,
    }
    path = tmp_path / "europarl.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def write_europarl_archive(tmp_path):
    """A Europarl-shaped archive (two line-aligned sides) made from the toy corpus."""
    pairs = [
        line.split("\t")
        for line in write_toy_corpus(tmp_path / "toy.tsv", 1000).read_text().splitlines()
    ]
    served = tmp_path / "served"
    served.mkdir()
    for side, lang in enumerate(("de", "en")):
        (tmp_path / lang).write_text("".join(pair[side] + "\n" for pair in pairs))
    with tarfile.open(served / "de-en.tgz", "w:gz") as tar:
        for lang in ("de", "en"):
            tar.add(tmp_path / lang, arcname=f"training/europarl-v7.de-en.{lang}")
    return served, hashlib.sha256((served / "de-en.tgz").read_bytes()).hexdigest()


def test_corpus_download_is_checked_and_split(tmp_path):
    served, sha256 = write_europarl_archive(tmp_path)
    workdir = tmp_path / "study"
    workdir.mkdir()
    with serve_directory(served) as url:
        wrong = europarl_config(tmp_path, f"{url}/de-en.tgz", "0" * 64)
        result = run_snakemake(
            workdir, wrong, "--cores", "1", "results/pools/cleaning.json", check=False
        )
        assert result.returncode != 0
        assert "de-en.tgz" in result.stdout + result.stderr
        assert "0" * 64 in result.stdout + result.stderr
        assert not (workdir / "resources" / "corpus" / "europarl-v7.tgz").exists()

        right = europarl_config(tmp_path, f"{url}/de-en.tgz", sha256)
        run_snakemake(workdir, right, "--cores", "1", "results/pools/cleaning.json")
    report = json.loads((workdir / "results/pools/cleaning.json").read_text())
    assert report["corpus"]["read"] == 1000
    assert report["pools"]["student"] == 300
