"""End to end: the whole DAG on a toy corpus, in a temporary directory."""

import base64
import csv
import gzip
import hashlib
import html
import importlib.util
import json
import re
import shutil
import tarfile

import polars as pl
import pytest
import torch
import yaml
from conftest import REPO, SERIAL_TARGETS, TINY, run_snakemake, serve_directory, write_toy_corpus

from regurgitate.engine.model import Transformer, load_model
from regurgitate.study.config import experiment_runs, experiments
from regurgitate.study.footprint import with_defaults

pytestmark = pytest.mark.slow


def snakemake(workdir, *args, check=True):
    return run_snakemake(workdir, TINY, "--cores", "2", *args, check=check)


def test_table_has_a_row_per_condition_and_size(finished_run):
    table = pl.read_csv(finished_run / "results" / "tables" / "scratch.csv")
    rows = set(zip(table["condition"], table["size"], strict=True))
    assert rows == {(c, s) for c in ("real", "gen-strong", "gen-weak") for s in (100, 300)}
    assert (table["n_seeds"] == 2).all()
    assert table["bleu_mean"].is_not_null().all()
    assert (table["bleu_ci_low"] <= table["bleu_mean"]).all()
    assert table["bleu_signature"].str.contains("nrefs:1").all()
    # Every condition but real carries its paired test against real at the same size.
    compared = table.filter(pl.col("condition") != "real")
    # two seeds: the test counts training noise; the sentence-only tests stay beside it
    assert compared["p_seeds_and_sentences"].is_between(0, 1).all()
    assert compared["p_sentences_bootstrap"].is_between(0, 1).all()
    assert compared["p_sentences_randomisation"].is_between(0, 1).all()
    assert compared["significant"].is_not_null().all()
    assert (compared["bleu_delta_low"] <= compared["bleu_delta_high"]).all()
    assert (compared["paired_seeds"] == 2).all()
    assert table.filter(pl.col("condition") == "real")["bleu_delta"].is_null().all()
    # the share of the runs that patience ended (the others hit a step or epoch cap)
    assert table["early_stopped"].is_between(0, 1).all()
    # E1 holds the mitigations (mitigations.experiments) at mitigations.sizes, beside its own.
    finetune = pl.read_csv(finished_run / "results" / "tables" / "finetune.csv")
    rows = set(zip(finetune["condition"], finetune["size"], strict=True))
    assert rows == FINETUNE_ROWS | {(c, 100) for c in MITIGATED}
    # one E1 seed: sentence tests only; `significant` stays empty with its reason
    untested = finetune.filter(pl.col("condition") != "real")
    assert untested["p_sentences_bootstrap"].is_between(0, 1).all()
    assert untested["significant"].is_null().all()
    assert untested["significance_note"].is_not_null().all()


# E1's own conditions in the tiny study (the strong generator is its base model: its output is
# `self`), and the mitigated conditions it holds at mitigations.sizes.
FINETUNE_ROWS = {(c, s) for c in ("real", "self", "gen-weak") for s in (100, 300)} | {
    ("partial-weak-25", 300)
}
SELECTING = [
    *[f"ordered-weak-{m}" for m in ["confidence", "consensus", "round_trip", "dual_cross_entropy"]],
    "ordered-weak-oracle",
    "detector-weak",
]
MITIGATED = [*SELECTING, "mixed-weak+strong", *[f"sources-{c}" for c in SELECTING]]


def test_a_seed_draws_the_sources_of_every_condition(finished_run):
    curricula = finished_run / "results" / "curricula"
    real = [pl.read_parquet(curricula / "real" / f"{seed}.parquet") for seed in (1, 2)]
    generated = pl.read_parquet(curricula / "gen-weak" / "1.parquet")
    assert generated["id"].to_list() == real[0]["id"].to_list()
    assert real[0]["id"].to_list() != real[1]["id"].to_list()
    assert sorted(real[0]["id"].to_list()) == sorted(real[1]["id"].to_list())


FIGURES = ["scratch", "finetune", "mechanisms", "loss_vs_mechanisms", "partial", "recursion"]


@pytest.mark.parametrize("name", FIGURES)
def test_figures_exist(finished_run, name):
    png = finished_run / "results" / "figures" / f"{name}.png"
    pdf = finished_run / "results" / "figures" / f"{name}.pdf"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pdf.read_bytes()[:4] == b"%PDF"


def test_finetune_starts_from_the_base_model(finished_run, tmp_path):
    table = pl.read_csv(finished_run / "results" / "tables" / "finetune.csv")
    rows = set(zip(table["condition"], table["size"], strict=True))
    assert rows - {(c, 100) for c in MITIGATED} == FINETUNE_ROWS
    run = finished_run / "results/runs/finetune/partial-weak-25/300/1"
    train = json.loads((run / "train.json").read_text())
    assert train["init_model"] == "results/generators/strong/model.pt"
    assert train["training"]["lr"] == 0.001 and train["training"]["seed"] == 1
    # The student's weights are the base model's, moved a little: closer to them than the
    # fresh model of its seed is, where a student that ignored the base would have started.
    base, _ = load_model(finished_run / "results/generators/strong/model.pt")
    student, _ = load_model(kept_student_model(finished_run, tmp_path, run))
    torch.manual_seed(train["training"]["seed"])
    fresh = Transformer(base.cfg)
    assert student.cfg == base.cfg
    assert distance(student, base) < 0.5 * distance(student, fresh)
    curriculum = pl.read_parquet(finished_run / "results/curricula/partial-weak-25/1.parquet")
    assert (curriculum.head(300)["origin"] == "human").sum() == 75
    self_targets = pl.read_parquet(finished_run / "results/curricula/finetune/self/1.parquet")
    strong = pl.read_parquet(finished_run / "results/synthetic/strong.parquet")
    assert set(self_targets["target"]) == set(strong["target"])


def kept_student_model(finished_run, tmp_path, run):
    """A student's model file: the study deletes each once it is evaluated, so train it again in
    a copy of the finished run, keeping it (training is deterministic)."""
    copy = tmp_path / "copy"
    shutil.copytree(finished_run, copy, symlinks=True)
    model = run.relative_to(finished_run) / "model.pt"
    snakemake(copy, "--notemp", str(model))
    return copy / model


def test_student_models_are_temporary_and_the_rest_stays(finished_run):
    """Students' models go once their evaluation has read them (keep_student_models: false);
    generators, the base model and the reverse model stay; every heavy job left a benchmark."""
    runs = finished_run / "results" / "runs"
    config = with_defaults(
        yaml.safe_load(TINY.read_text()), REPO / "workflow/schemas/config.schema.yaml"
    )
    expected = {
        f"{experiment}/{condition}/{size}/{seed}"
        for experiment in experiments(config)
        for condition, size, seed in experiment_runs(config, experiment)
    }
    trained = {str(p.parent.relative_to(runs)) for p in runs.glob("*/*/*/*/metrics.json")}
    assert trained == expected and len(trained) == 32
    assert not list(runs.glob("**/model.pt"))
    for model in ["generators/weak", "generators/strong", "reverse"]:
        assert (finished_run / "results" / model / "model.pt").stat().st_size > 0
    assert not list((finished_run / "results").glob("checkpoints/**/*.pt"))
    benchmarks = finished_run / "benchmarks" / "results"
    for rule in [
        "train_generator",
        "train_student",
        "evaluate_run",
        "evaluate_generator",
        "generate_synthetic",
        "train_reverse",
        "back_translate",
        "pair_nll",
        "quality_scores",
        "train_detector",
        "detector_scores",
        "mechanisms_source",
    ]:
        assert list((benchmarks / rule).glob("**/*.tsv")), rule


def test_the_preset_benchmark_accounts_for_every_job(finished_run):
    """benchmarks/cpu_preset.py's per-rule table, read from Snakemake's own log: one row per job
    that wrote a log (every rule but `all`), seconds that hold the job's own logged span, and
    start-up CPU from every job."""
    spec = importlib.util.spec_from_file_location("cpu_preset", REPO / "benchmarks/cpu_preset.py")
    preset = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(preset)
    rules = {r["rule"]: r for r in preset.rule_table(finished_run)}
    job_logs = [p for p in (finished_run / "logs").rglob("*.log") if p.is_file()]
    assert sum(r["jobs"] for r in rules.values()) == len(job_logs) + 1  # + the rule `all`
    assert rules["train_student"]["jobs"] == 32 and rules["train_student"]["stage"] == "training"
    assert rules["evaluate_run"]["stage"] == "decoding"
    for name, rule in rules.items():
        assert 0 <= rule["overhead_s"] <= rule["total_s"] + 1, name
        if name != "all":
            assert rule["startup_cpu_s"] > 0, name
    wall = sum(preset.run_spans(finished_run))
    assert max(r["total_s"] / r["jobs"] for r in rules.values()) <= wall
    # two cores: the jobs' seconds cannot exceed twice the wall time (timestamps to the second)
    assert sum(r["total_s"] for r in rules.values()) <= 2 * wall + len(job_logs)
    table = preset.markdown_table(list(rules.values()), wall, 2)
    assert "| train_student | training | 32 |" in table and "Cores busy" in table
    # The footprint's estimate beside every model-bearing rule's measured jobs.
    check = preset.footprint_check(finished_run, TINY, list(rules.values()))
    assert {r["rule"] for r in check} >= {"train_student", "train_recursion", "evaluate_run"}
    for row in check:
        assert row["measured_jobs"] == row["jobs"] > 0, row
        assert row["measured_s"] == rules[row["rule"]]["total_s"] and row["expected_s"] > 0, row
    assert "| train_student | 32 |" in preset.footprint_table(check)
    steps = preset.training_steps(finished_run / "results")
    assert sum(g["models"] for name, g in steps.items() if name.startswith("runs/")) == 32
    assert steps["generators"]["models"] > 0 and steps["recursion"]["models"] > 0
    assert all(g["steps"] > 0 and g["target_tokens"] > 0 for g in steps.values())


def test_cores_1_and_cores_2_give_the_same_bytes(finished_run, serial_run):
    """A run of every condition of E2 from scratch, made again from scratch in another folder
    with --cores 1 instead of 2 (another job order, jobs alone instead of side by side): every
    file it made under results/ is the same, byte for byte, as the whole study's (README.md,
    Reproducibility)."""
    compared = sorted(p.relative_to(serial_run) for p in (serial_run / "results").rglob("*"))
    compared = [path for path in compared if (serial_run / path).is_file()]
    missing = [str(path) for path in compared if not (finished_run / path).is_file()]
    assert missing == []
    different = [
        str(path)
        for path in compared
        if (finished_run / path).read_bytes() != (serial_run / path).read_bytes()
    ]
    print(f"{len(compared)} files compared, {len(compared) - len(different)} identical")
    assert different == []
    # the tokenizer, pools, generators, synthetic sets, curricula, hypotheses and scores
    assert len(compared) > 25
    assert all((serial_run / target).is_file() for target in SERIAL_TARGETS)


def distance(a, b) -> float:
    """Euclidean distance between two models' weights."""
    b_weights = b.state_dict()
    return sum(float((w - b_weights[k]).pow(2).sum()) for k, w in a.state_dict().items()) ** 0.5


def test_mechanisms_table_has_human_and_every_generator(finished_run):
    table = pl.read_csv(finished_run / "results" / "tables" / "mechanisms.csv")
    assert table["source"].to_list() == ["human", "strong", "weak"]
    human, *generators = table.iter_rows(named=True)
    assert human["error_rate"] is None and human["mtld"] > 0
    for row in generators:
        record = json.loads((finished_run / f"results/mechanisms/{row['source']}.json").read_text())
        below = [score < record["chrf_threshold"] for score in record["sentence_chrf"]]
        assert row["error_rate"] == pytest.approx(sum(below) / len(below), abs=1e-4)
        assert row["ter"] > 0
        assert row["mtld_ci_low"] <= row["mtld"] <= row["mtld_ci_high"]
        assert row["bleu_loss_scratch_size"] == 300 and row["bleu_loss_finetune_size"] == 300
        assert row["bleu_loss_scratch_mean"] is not None
    record = json.loads((finished_run / "results/mechanisms/weak.json").read_text())
    assert record["chrf_threshold"] == 30  # the schema's default
    assert record["sample_tokens"] == 800 and len(record["sentence_chrf"]) == 300


def test_partial_table_has_a_row_per_experiment_and_generator(finished_run):
    table = pl.read_csv(finished_run / "results" / "tables" / "partial.csv")
    crossings = table.filter(pl.col("compared") == "real")
    rows = set(
        zip(
            crossings["experiment"],
            crossings["generator"],
            crossings["synthetic_condition"],
            strict=True,
        )
    )
    assert rows == {
        ("scratch", "weak", "gen-weak"),
        ("scratch", "strong", "gen-strong"),
        ("finetune", "weak", "gen-weak"),
        ("finetune", "strong", "self"),
    }
    notes = {"interpolated", "below the smallest size", "beyond the largest size"}
    assert set(crossings["worth_note"]) <= notes
    interpolated = crossings.filter(pl.col("worth_note") == "interpolated")
    assert interpolated["real_pairs_worth"].is_between(100, 300).all()
    (mix,) = table.filter(pl.col("compared") == "partial-weak-25").iter_rows(named=True)
    assert (mix["experiment"], mix["size"], mix["human_pairs"]) == ("finetune", 300, 75)
    assert (
        0 <= mix["p_sentences_bootstrap"] <= 1 and mix["bleu_delta_low"] <= mix["bleu_delta_high"]
    )
    assert mix["significant"] is None  # one E1 seed
    # Each row says whether its generator learnt to translate, as generators.csv does.
    generators = pl.read_csv(finished_run / "results" / "tables" / "generators.csv")
    learned = dict(zip(generators["generator"], generators["generator_learned"], strict=True))
    learned["self"] = learned["strong"]  # E1's base
    for row in table.iter_rows(named=True):
        assert row["generator_learned"] == learned[row["generator"]]


def test_runs_record_scores_and_training(finished_run):
    metrics = json.loads(
        (finished_run / "results/runs/scratch/real/300/1/metrics.json").read_text()
    )
    assert metrics["condition"] == "real" and metrics["size"] == 300 and metrics["seed"] == 1
    assert metrics["train"]["pairs"] == 300
    assert "version" in metrics["chrf_signature"]
    log = (finished_run / "logs/train_student/scratch/real/300/1.log").read_text()
    assert "target tokens/s" in log and "dev bleu" in log
    # each line names its run and gives its progress against the total, with the time left
    run = r"\[train_student/scratch/real/300/1\] INFO regurgitate\.engine\.train: "
    assert re.search(run + r"step \d+/\d+ \(\d+%\), \S+ left", log)
    # the end-of-run summary, in Snakemake's log of the study's run; no `Shell command: None`
    logs = [p.read_text() for p in (finished_run / ".snakemake" / "log").glob("*.snakemake.log")]
    assert any("The run is finished" in t and "scratch, 300 training pairs:" in t for t in logs)
    assert not any("Shell command: None" in t for t in logs)


def test_synthetic_data_and_pools(finished_run):
    student = pl.read_parquet(finished_run / "results/pools/student.parquet")
    synthetic = pl.read_parquet(finished_run / "results/synthetic/weak.parquet")
    assert synthetic.columns[:4] == ["id", "source", "target", "logprob"]
    assert sorted(synthetic["id"]) == sorted(student["id"])
    assert (synthetic["logprob"] <= 0).all()
    report = json.loads((finished_run / "results/pools/cleaning.json").read_text())
    assert report["pools"]["student"] == 300
    # the pools were checked against the config, and no architecture cuts a pair of them
    checks = json.loads((finished_run / "results/pools/checks.json").read_text())
    assert checks["pools"] == report["pools"]
    assert checks["truncated_pairs"]["teacher"] == {"small": 0, "tiny": 0}
    train = json.loads((finished_run / "results/generators/weak/train.json").read_text())
    assert train["truncated_pairs"] == 0
    generators = pl.read_csv(finished_run / "results/tables/generators.csv")
    assert set(generators["generator"]) == {"weak", "strong"}


# What `snakemake --report` shows of the tiny study: every table (as the HTML page rendered from
# its CSV) and every figure the README lists, the per-strategy mitigation curves included.
REPORT_FILES = sorted(
    [f"results/tables/{t}.html" for t in ["scratch", "finetune", "generators", "mechanisms"]]
    + [f"results/tables/{t}.html" for t in ["partial", "mitigations", "quality", "detector"]]
    + ["results/tables/curricula.html", "results/tables/recursion.html"]
    + [f"results/figures/{f}.png" for f in ["scratch", "finetune", "mechanisms", "partial"]]
    + ["results/figures/recursion.png"]
    + ["results/figures/loss_vs_mechanisms.png", "results/figures/gap_closed.png"]
    + [f"results/figures/mitigations/finetune-S{s}.png" for s in (1, 2, 3)]
    + ["results/figures/rule_graph.png"]
)


def report_data(page: str, variable: str):
    """A value the report page defines in JavaScript (`var results = {...}`) as JSON: the last
    definition, after the libraries'."""
    start = page.rindex(f"var {variable} = ") + len(f"var {variable} = ")
    return json.JSONDecoder().raw_decode(page, start)[0]


def embedded(entry: dict) -> bytes:
    return base64.b64decode(entry["data_uri"].split("base64,", 1)[1])


def test_report_shows_every_table_figure_the_study_and_its_config(finished_run):
    """`snakemake --report` on the finished study: one self-contained HTML page that holds every
    table rendered and every figure, each with its caption, a page describing the study and the
    configuration used."""
    snakemake(finished_run, "--report", "report.html")
    page = (finished_run / "report.html").read_text()
    assert page.lstrip().lower().startswith("<!doctype html")
    results = report_data(page, "results")
    assert sorted(results) == REPORT_FILES
    # Nothing the study makes is left out: every table and figure in results/ is in the report.
    made = [p.relative_to(finished_run) for p in (finished_run / "results").glob("tables/*.csv")]
    made += [
        p.relative_to(finished_run) for p in (finished_run / "results").glob("figures/**/*.png")
    ]
    shown = {str(p.with_suffix(".html")) if p.suffix == ".csv" else str(p) for p in made}
    assert shown == set(REPORT_FILES)
    for path, entry in results.items():
        assert embedded(entry) == (finished_run / path).read_bytes(), path
        assert entry["caption"].strip(), path
    for path in REPORT_FILES:
        if path.endswith(".html"):
            table = embedded(results[path]).decode()
            rows = list(csv.reader((finished_run / path).with_suffix(".csv").open()))
            assert table.count("<tr") == len(rows), path  # the header and every row
            assert all(html.escape(value) in table for row in rows for value in row), path
    curves = results["results/figures/mitigations/finetune-S2.png"]
    assert curves["labels"] == {"experiment": "finetune", "strategy": "S2"}
    # captions, rendered from workflow/report/*.rst with the job's wildcards
    captions = " ".join(" ".join(entry["caption"].split()) for entry in results.values())
    assert "Learning curves of experiment E1 (fine-tuning" in captions
    assert "Learning curves of experiment E2 (students from scratch)" in captions
    assert "Experiment E1: test BLEU and chrF of the base model fine-tuned" in captions
    assert "The share of the gap to real data closed by every mitigated condition" in captions
    assert "Learning curves of one mitigation strategy" in captions
    # The study's rule graph (a box per rule) stands in its own category, beside Snakemake's job
    # graph.
    categories = report_data(page, "categories")
    assert categories["Workflow"] == {"Other": ["results/figures/rule_graph.png"]}
    assert "The rule graph of this run" in captions
    description = report_data(page, "workflow_desc")
    assert "The regurgitative-training study" in description
    assert 'the generator <tt class="docutils literal">strong</tt> fine-tuned' in description
    # the configuration used: the file's keys, and the schema's defaults filled in
    used = html.unescape(description.split("The configuration used", 1)[1])
    assert '"vocab_size": 80' in used and '"sample_tokens": 800' in used
    assert '"max_runtime": 1440' in used and '"keep_student_models": false' in used


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


def write_multi30k_splits(tmp_path):
    """The toy corpus as a multi30k corpus serves it: train and test splits, each as
    <split>.de.gz and <split>.en.gz; returns the served folder and every file's SHA-256."""
    pairs = [
        line.split("\t")
        for line in write_toy_corpus(tmp_path / "toy.tsv", 1000).read_text().splitlines()
    ]
    served = tmp_path / "raw"
    served.mkdir()
    for split, rows in (("train", pairs[:900]), ("test_2016_flickr", pairs[900:])):
        for side, lang in enumerate(("de", "en")):
            text = "".join(row[side] + "\n" for row in rows)
            (served / f"{split}.{lang}.gz").write_bytes(gzip.compress(text.encode("utf-8")))
    sha256s = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in served.iterdir()}
    return served, sha256s, pairs[900:]


def multi30k_config(tmp_path, base_url: str, sha256s: dict):
    config = yaml.safe_load(TINY.read_text())
    config["corpus"] = {
        "format": "multi30k",
        "base_url": base_url,
        "train_split": "train",
        "test_split": "test_2016_flickr",
        "sha256s": sha256s,
    }
    path = tmp_path / "multi30k.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_multi30k_download_is_checked_and_split(tmp_path):
    served, sha256s, test_pairs = write_multi30k_splits(tmp_path)
    workdir = tmp_path / "study"
    workdir.mkdir()
    downloads = workdir / "resources" / "corpus" / "multi30k"
    wrong = {**sha256s, "test_2016_flickr.de.gz": "0" * 64}
    with serve_directory(served) as url:
        result = run_snakemake(
            workdir,
            multi30k_config(tmp_path, url, wrong),
            "--cores",
            "1",
            "--keep-going",
            "results/pools/cleaning.json",
            check=False,
        )
        output = result.stdout + result.stderr
        assert result.returncode != 0
        assert f"{url}/test_2016_flickr.de.gz" in output
        assert "0" * 64 in output and sha256s["test_2016_flickr.de.gz"] in output
        assert not (downloads / "test_2016_flickr.de.gz").exists()
        assert not (workdir / "results" / "pools").exists()

        right = multi30k_config(tmp_path, url, sha256s)
        run_snakemake(workdir, right, "--cores", "1", "results/pools/cleaning.json")
    assert sorted(p.name for p in downloads.iterdir()) == sorted(sha256s)
    report = json.loads((workdir / "results/pools/cleaning.json").read_text())
    assert report["corpus"]["read"] == 900 and report["test"]["read"] == 100
    assert report["pools"]["student"] == 300
    # The test split is the test pool, as published less its duplicate pairs.
    test = pl.read_parquet(workdir / "results/pools/test.parquet")
    published = list(dict.fromkeys((de, en) for de, en in test_pairs))
    assert list(zip(test["source"], test["target"], strict=True)) == published
    assert report["pools"]["test"] == len(published)


def test_mitigations_are_trained_and_reported(finished_run):
    table = pl.read_csv(finished_run / "results" / "tables" / "mitigations.csv")
    metrics = ["confidence", "consensus", "dual_cross_entropy", "oracle", "round_trip"]
    expected = {("S1", f"ordered-weak-{m}") for m in metrics}
    expected |= {("S2", "mixed-weak+strong"), ("S3", "detector-weak")}
    assert set(zip(table["strategy"], table["condition"], strict=True)) == expected
    assert (table["size"] == 100).all() and (table["experiment"] == "finetune").all()
    mixed = table.filter(pl.col("strategy") == "S2").row(0, named=True)
    assert mixed["mtld"] > 0 and mixed["unmitigated_bleu"] is not None
    baselines = set(table.filter(pl.col("strategy") == "S2")["baseline"])
    # In E1 the strong generator is the base model: its data is the `self` condition.
    assert "mean(gen-weak, self)" in baselines and len(baselines) == 2
    assert baselines - {"mean(gen-weak, self)"} <= {"best: gen-weak", "best: self"}
    # Every S1 and S3 row has its source-selection control; the oracle is not deployable.
    selecting = table.filter(pl.col("strategy").is_in(["S1", "S3"]))
    assert selecting["selection_effect_mean"].is_not_null().all()
    assert set(selecting.filter(~pl.col("deployable"))["condition"]) == {"ordered-weak-oracle"}
    generators = pl.read_csv(finished_run / "results" / "tables" / "generators.csv")
    learned = dict(zip(generators["generator"], generators["generator_learned"], strict=True))
    expected_learned = {
        "weak": learned["weak"],
        "weak+strong": learned["weak"] and learned["strong"],
    }
    assert [expected_learned[g] for g in table["generator"]] == table["generator_learned"].to_list()
    curricula = pl.read_csv(finished_run / "results" / "tables" / "curricula.csv")
    runs = list((finished_run / "results" / "runs").glob("*/*/*/*/metrics.json"))
    assert curricula.height == len(runs)
    assert (curricula["target_tokens"] > 0).all()
    quality = pl.read_csv(finished_run / "results" / "tables" / "quality.csv")
    assert sorted(quality["metric"]) == sorted(m for m in metrics if m != "oracle")
    detector = pl.read_csv(finished_run / "results" / "tables" / "detector.csv")
    assert detector["generator"].to_list() == ["weak"] and 0 <= detector["roc_auc"][0] <= 1
    scores = pl.read_parquet(finished_run / "results/quality/weak.parquet")
    ordered = pl.read_parquet(finished_run / "results/curricula/ordered-weak-oracle/1.parquet")
    oracle = dict(zip(scores["id"], scores["oracle"], strict=True))
    ranked = [oracle[i] for i in ordered["id"]]
    assert ranked == sorted(ranked, reverse=True)
    for name in ["gap_closed", *[f"mitigations/finetune-S{i}" for i in (1, 2, 3)]]:
        assert (finished_run / "results" / "figures" / f"{name}.png").stat().st_size > 0


def test_recursion_runs_every_generation_and_reports_it(finished_run):
    table = pl.read_csv(finished_run / "results" / "tables" / "recursion.csv")
    rows = list(zip(table["regime"], table["generation"], strict=True))
    assert rows == [("human", None), ("real", 0)] + [
        (regime, g) for regime in ("replace", "accumulate") for g in (1, 2)
    ]
    generations = table.filter(pl.col("regime") != "human")
    assert generations["bleu_mean"].is_not_null().all()
    assert generations["rare_words_mean"].is_not_null().all()
    tested = generations.filter(pl.col("generation") > 0)
    # one seed: sentence tests only, and `significant` left empty with its reason
    assert (
        tested["p_sentences_bootstrap"].is_not_null().all() and (tested["paired_seeds"] == 1).all()
    )
    assert tested["significant"].is_null().all()
    assert (tested["significance_note"] == "one seed: training variance untested").all()
    human = table.row(0, named=True)
    assert human["tail_share_mean"] == 1 and human["mtld_mean"] > 0
    runs = finished_run / "results" / "recursion"
    # replace/2 learns generation 1's translations; accumulate/2 the human pairs and both
    # earlier generations' translations of the same 100 sources.
    replace = pl.read_parquet(runs / "replace/2/100/1/curriculum.parquet")
    parent = pl.read_parquet(runs / "replace/1/100/1/synthetic.parquet")
    assert set(replace["origin"]) == {"generation-1"}
    assert dict(zip(replace["id"], replace["target"], strict=True)) == dict(
        zip(parent["id"], parent["target"], strict=True)
    )
    accumulate = pl.read_parquet(runs / "accumulate/2/100/1/curriculum.parquet")
    counts = dict(accumulate["origin"].value_counts().iter_rows())
    assert counts == {"human": 100, "generation-0": 100, "generation-1": 100}
    record = json.loads((runs / "accumulate/2/100/1/measures.json").read_text())
    sample = json.loads((runs / "sample-size.json").read_text())["sample_tokens"]
    assert record["sample_tokens"] in (sample, None) and record["tail"]["max_count"] == 30


def test_every_results_path_the_docs_name_is_made(finished_run):
    """Each `results/...` path in README.md, docs/study.md and config/README.md names files the
    study makes (placeholders such as <condition> and {png,pdf} stand for any part), so the docs
    cannot drift from the code's layout. Students' models are temporary, and the CPU preset's
    benchmark writes its own folder."""
    import glob
    import itertools
    import re

    transient = {"results/runs/<e>/<condition>/<size>/<seed>/model.pt", "results/cpu_preset/"}
    transient.add("results/checkpoints/")  # emptied and removed as each run ends
    missing = []
    for doc in ["README.md", "docs/study.md", "config/README.md"]:
        text = (REPO / doc).read_text()
        for path in set(re.findall(r"results/[A-Za-z0-9_<>{},./*-]*[A-Za-z0-9_>}/*]", text)):
            if path in transient:
                continue
            parts = re.split(r"(\{[^}]*\})", re.sub(r"<[^>]+>", "*", path))
            choices = [p[1:-1].split(",") if p.startswith("{") else [p] for p in parts]
            for expanded in itertools.product(*choices):
                if not glob.glob(str(finished_run / "".join(expanded))):
                    missing.append(f"{doc}: {path}")
    assert missing == []
