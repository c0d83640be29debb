"""The configuration is checked before any job runs, and errors name the key."""

import copy
import re
import shlex

import pytest
import yaml
from conftest import REPO, run_snakemake

from regurgitate.study.config import (
    ConfigError,
    check_config,
    experiment_conditions,
    experiment_runs,
    experiments,
    full_set_conditions,
    mitigation_conditions,
)

CONFIGS = [
    REPO / "config" / "paper.yaml",
    REPO / "config" / "config.yaml",
    REPO / "tests" / "config" / "tiny.yaml",
]


def load(path):
    return yaml.safe_load(path.read_text())


def validate(config):
    from snakemake.utils import validate as snakemake_validate

    snakemake_validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))


# The tiny CI study (tests/config) keeps two generators: the presets a user runs are checked.
@pytest.mark.parametrize("path", CONFIGS[:2], ids=lambda p: p.name)
def test_presets_span_a_generator_ladder_with_three_seeds(path):
    config = load(path)
    local = [g for g in config["generators"].values() if g["backend"] == "local"]
    assert len(local) >= 4
    for experiment in experiments(config):
        assert len(config[experiment]["seeds"]) >= 3


@pytest.mark.parametrize("path", CONFIGS)
def test_shipped_configs_are_valid(path):
    config = load(path)
    validate(config)
    check_config(config)


def test_conditions_of_the_default_study():
    config = load(CONFIGS[0])
    metrics = ["confidence", "consensus", "round_trip", "dual_cross_entropy", "oracle"]
    selecting = [*[f"ordered-weak-{m}" for m in metrics], "detector-weak"]
    mitigated = [*selecting[:-1], "mixed-weak+strong", "detector-weak"]
    mitigated += [f"sources-{c}" for c in selecting]
    assert experiment_conditions(config, "scratch") == [
        "real",
        "gen-weak",
        "gen-fair",
        "gen-good",
        "gen-strong",
        *mitigated,
    ]
    partial = [f"partial-{g}-{p}" for g in ("weak", "strong") for p in (10, 25, 50)]
    assert experiment_conditions(config, "finetune") == [
        "real",
        "self",
        "gen-weak",
        "gen-fair",
        "gen-good",
        *partial,
        *mitigated,
    ]
    assert full_set_conditions(config, "finetune") == {
        "weak": "gen-weak",
        "fair": "gen-fair",
        "good": "gen-good",
        "strong": "self",
    }
    assert full_set_conditions(config, "scratch")["strong"] == "gen-strong"


def test_partial_conditions_train_at_the_largest_size_unless_told():
    config = load(CONFIGS[2])
    runs = experiment_runs(config, "finetune")
    assert ("partial-weak-25", 300, 1) in runs and ("partial-weak-25", 100, 1) not in runs
    assert ("gen-weak", 100, 1) in runs and ("self", 300, 1) in runs
    mitigated = set(mitigation_conditions(config, "finetune"))  # the tiny study's S1-S3
    assert len([run for run in runs if run[0] not in mitigated]) == 3 * 2 + 1
    config["finetune"]["partial"]["sizes"] = [100, 300]
    assert ("partial-weak-25", 100, 1) in experiment_runs(config, "finetune")
    assert experiments(config) == ["scratch", "finetune"]
    # E2 has no `self`: its generators are teachers, every one gives gen-<g>.
    scratch = {condition for condition, _, _ in experiment_runs(config, "scratch")}
    assert {"gen-strong", "gen-weak", "real"} <= scratch and "self" not in scratch
    del config["finetune"]
    config["mitigations"]["experiments"] = ["scratch"]
    assert experiments(config) == ["scratch"]  # E1 is optional
    check_config(config)


@pytest.mark.parametrize(
    ("mutate", "named"),
    [
        (lambda c: c["training"].update(trian_steps=3), "trian_steps"),
        (lambda c: c["training"].update(eval_metric="loss"), "loss"),
        (lambda c: c["generators"].update({"bad-name": c["generators"]["weak"]}), "bad-name"),
        (lambda c: c["scratch"].update(sizes=[0]), "0"),
        (lambda c: c.update(curriculum_seed="per-run"), "per-run"),
        (lambda c: c["scratch"].update(self_generator="strong"), "self_generator"),
    ],
)
def test_schema_names_the_wrong_key(mutate, named):
    from snakemake.exceptions import WorkflowError

    config = copy.deepcopy(load(CONFIGS[2]))
    mutate(config)
    with pytest.raises(WorkflowError, match=named):
        validate(config)


@pytest.mark.parametrize(
    ("mutate", "key"),
    [
        (lambda c: c["generators"]["weak"].update(architecture="huge"), "generators.weak"),
        (lambda c: c["scratch"].update(sizes=[100, 5000]), "scratch.sizes"),
        (lambda c: c["finetune"].update(base="gpt"), "finetune.base"),
        (lambda c: c["mitigations"].update(sizes=[300]), "mitigations.sizes"),
        (lambda c: c["finetune"]["partial"].update(sizes=[5000]), "finetune.partial.sizes"),
        (lambda c: c["finetune"]["partial"].update(generators=["x"]), "finetune.partial"),
        (lambda c: c["generators"].update(human=c["generators"]["weak"]), "generators.human"),
    ],
)
def test_cross_key_errors_name_the_key(mutate, key):
    config = copy.deepcopy(load(CONFIGS[2]))
    mutate(config)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        check_config(config)


def test_misspelled_key_stops_snakemake_before_any_job(tmp_path):
    config = load(CONFIGS[2])
    config["scratch"]["seedz"] = [1]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_snakemake(tmp_path, path, "--cores", "1", "-n", check=False)
    assert result.returncode != 0
    assert "seedz" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def test_e2_mitigations_are_planned_for_every_seed_of_e2(tmp_path):
    """The tiny study runs S1-S3 in E1; moved to E2, the same rules plan them for each of E2's
    seeds, beside E2's own runs."""
    from conftest import write_toy_corpus

    config = load(CONFIGS[2])
    config["mitigations"]["experiments"] = ["scratch"]
    path = tmp_path / "e2.yaml"
    path.write_text(yaml.safe_dump(config))
    write_toy_corpus(tmp_path / "data" / "corpus.tsv", 1500)
    result = run_snakemake(tmp_path, path, "-n", "results/tables/mitigations.csv")
    planned = set(re.findall(r"results/runs/(\S+)/metrics\.json", result.stdout))
    mitigated = mitigation_conditions(config, "scratch")
    assert {f"scratch/{c}/100/{seed}" for c in mitigated for seed in (1, 2)} <= planned
    assert not [run for run in planned if run.startswith("finetune/")]
    assert "scratch/real/100/1" in planned  # the baseline the gaps are measured against


# --- the corpus block -------------------------------------------------------------------------


def cpu_config():
    return copy.deepcopy(load(CONFIGS[1]))


def test_cpu_preset_downloads_multi30k_checksummed():
    from regurgitate.study.config import corpus_downloads

    downloads = corpus_downloads(cpu_config()["corpus"])
    assert sorted(downloads) == sorted(
        f"{split}.{lang}.gz" for split in ("train", "test_2016_flickr") for lang in ("de", "en")
    )
    for name, (url, sha256) in downloads.items():
        assert url.startswith("https://") and url.endswith(f"/data/task1/raw/{name}")
        assert re.fullmatch("[0-9a-f]{64}", sha256)


def test_a_downloaded_file_of_another_split_names_the_splits():
    from regurgitate.study.config import corpus_download, corpus_downloads

    corpus = cpu_config()["corpus"]
    assert corpus_download(corpus, "train.de.gz") == corpus_downloads(corpus)["train.de.gz"]
    with pytest.raises(ValueError, match=r"val\.de\.gz: not a file .*corpus\.train_split"):
        corpus_download(corpus, "val.de.gz")


def test_generator_labels_name_an_api_model_by_backend_and_model():
    from regurgitate.study.config import generator_labels

    config = load(CONFIGS[0])
    local = next(name for name, g in config["generators"].items() if g["backend"] == "local")
    assert generator_labels(local, config["generators"][local]) == {
        "generator": local,
        "architecture": config["generators"][local]["architecture"],
        "teacher_pairs": config["generators"][local].get("teacher_pairs"),
    }
    api = {"backend": "openai", "model": "gpt-4o-mini"}
    assert generator_labels("gpt", api) == {
        "generator": "gpt",
        "architecture": "openai:gpt-4o-mini",
    }


@pytest.mark.parametrize(
    ("mutate", "key"),
    [
        (lambda c: c["sha256s"].pop("test_2016_flickr.en.gz"), "corpus.sha256s"),
        (lambda c: c.update(test_split="train"), "corpus.test_split"),
        (lambda c: c.update(test_tsv="data/test.tsv"), "corpus.test_tsv"),
        (lambda c: c.update(test_split=None), "pools.test"),
    ],
)
def test_multi30k_cross_key_errors_name_the_key(mutate, key):
    config = cpu_config()
    mutate(config["corpus"])
    validate(config)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        check_config(config)


@pytest.mark.parametrize(
    ("mutate", "named"),
    [
        (lambda c: c["sha256s"].update({"train.de.gz": "726e39b2"}), "726e39b2"),
        (lambda c: c["sha256s"].update({"train.de": "0" * 64}), "train.de"),
        (lambda c: c.update(base_url="raw.example.org/data"), "raw.example.org/data"),
        (lambda c: c.pop("base_url"), "base_url"),
        (lambda c: c.update(train_split="../train"), "../train"),
        (lambda c: c.update(format="multi31k"), "multi31k"),
    ],
)
def test_multi30k_schema_names_the_wrong_value(mutate, named):
    from snakemake.exceptions import WorkflowError

    config = cpu_config()
    mutate(config["corpus"])
    with pytest.raises(WorkflowError, match=re.escape(named)):
        validate(config)


def test_readme_line_points_the_default_study_at_a_local_copy():
    """The README's one-line override, parsed and merged as the workflow does, gives a valid
    tsv corpus reading ../shared/data/multi30k."""
    from regurgitate.study.config_file import merge_config, parse_overrides

    lines = [
        line
        for line in (REPO / "README.md").read_text().splitlines()
        if line.startswith("snakemake --cores all --config corpus=")
    ]
    assert len(lines) == 1
    argv = shlex.split(lines[0])
    config = cpu_config()
    merge_config(config, parse_overrides([argv[argv.index("--config") + 1]]))
    validate(config)
    check_config(config)
    shared = "../shared/data/multi30k"
    assert config["corpus"]["format"] == "tsv"
    assert config["corpus"]["tsv"] == f"{shared}/train.tsv"
    assert config["corpus"]["test_tsv"] == f"{shared}/test_2016_flickr.tsv"


def test_the_schema_fills_in_what_the_rules_read():
    config = load(CONFIGS[2])
    validate(config)
    assert config["curriculum_seed"] == "run"
    assert (config["scratch"]["select"], config["finetune"]["select"]) == ("best", "last")
    assert config["mechanisms"]["keep_punctuation"] is False
    assert config["mitigations"]["source_controls"] is True


# --- pools that the study needs ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("pools", "key"),
    [
        ({"dev": 0}, "pools.dev"),
        ({"student": 0}, "pools.student"),
        ({"teacher": 0, "student": None}, "pools.teacher"),
        ({"test": 0}, "pools.test"),  # no corpus.test_tsv in the tiny study
        ({"detector": 1}, "pools.detector"),  # S3 needs pairs to train on and to hold out
        ({"detector": 0}, "pools.detector"),
    ],
)
def test_empty_pools_are_refused_naming_the_key(pools, key):
    config = copy.deepcopy(load(CONFIGS[2]))
    config["pools"].update(pools)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        check_config(config)


def test_detector_pool_may_be_empty_without_s3():
    config = copy.deepcopy(load(CONFIGS[2]))
    config["pools"]["detector"] = 0
    config["mitigations"]["detector"] = False
    check_config(config)
    config["pools"]["test"] = 0
    config["corpus"]["test_tsv"] = "data/test.tsv"  # a separate test set: no test pool carved
    check_config(config)


def test_empty_pool_stops_snakemake_before_any_job(tmp_path):
    config = load(CONFIGS[2])
    config["pools"]["dev"] = 0
    path = tmp_path / "empty-dev.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_snakemake(tmp_path, path, "--cores", "1", check=False)
    assert result.returncode != 0
    assert "pools.dev: 0 pairs" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists() and not (tmp_path / "logs").exists()


@pytest.mark.slow
def test_readme_dry_run_count_is_the_default_studys(tmp_path):
    """README.md's first dry run gives the number of jobs a plain `snakemake -n` plans for the
    default study, where a user runs it (the repository's root, with its config/)."""
    import shutil
    import subprocess
    import sys

    shutil.copytree(REPO / "config", tmp_path / "config")
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "workflow" / "Snakefile")]
    result = subprocess.run(
        [*command, "--cores", "2", "-n"], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    planned = int(re.search(r"^total\s+(\d+)$", result.stdout, re.MULTILINE).group(1))
    readme = (REPO / "README.md").read_text()
    stated = re.search(r"snakemake --cores all -n .*: (\d+) jobs for config/config.yaml", readme)
    assert int(stated.group(1)) == planned
