"""The configuration is checked before any job runs, and errors name the key."""

import copy

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
)

CONFIGS = [
    REPO / "config" / "config.yaml",
    REPO / "config" / "cpu.yaml",
    REPO / "tests" / "config" / "tiny.yaml",
]


def load(path):
    return yaml.safe_load(path.read_text())


def validate(config):
    from snakemake.utils import validate as snakemake_validate

    snakemake_validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_are_valid(path):
    config = load(path)
    validate(config)
    check_config(config)


def test_conditions_of_the_default_study():
    config = load(CONFIGS[0])
    metrics = ["confidence", "consensus", "round_trip", "dual_cross_entropy", "oracle"]
    mitigated = [*[f"ordered-weak-{m}" for m in metrics], "mixed-weak+strong", "detector-weak"]
    assert experiment_conditions(config, "scratch") == ["real", "self", "gen-weak", *mitigated]
    partial = [f"partial-{g}-{p}" for g in ("weak", "strong") for p in (10, 25, 50)]
    assert experiment_conditions(config, "finetune") == [
        "real",
        "self",
        "gen-weak",
        *partial,
        *mitigated,
    ]
    assert full_set_conditions(config, "finetune") == {"weak": "gen-weak", "strong": "self"}


def test_partial_conditions_train_at_the_largest_size_unless_told():
    config = load(CONFIGS[2])
    runs = experiment_runs(config, "finetune")
    assert ("partial-weak-25", 300, 1) in runs and ("partial-weak-25", 100, 1) not in runs
    assert ("gen-weak", 100, 1) in runs and ("self", 300, 1) in runs
    assert len(runs) == 3 * 2 + 1
    config["finetune"]["partial"]["sizes"] = [100, 300]
    assert ("partial-weak-25", 100, 1) in experiment_runs(config, "finetune")
    assert experiments(config) == ["scratch", "finetune"]
    del config["finetune"]
    assert experiments(config) == ["scratch"]  # E1 is optional
    check_config(config)


@pytest.mark.parametrize(
    ("mutate", "named"),
    [
        (lambda c: c["training"].update(trian_steps=3), "trian_steps"),
        (lambda c: c["training"].update(eval_metric="loss"), "loss"),
        (lambda c: c["generators"].update({"bad-name": c["generators"]["weak"]}), "bad-name"),
        (lambda c: c["scratch"].update(sizes=[0]), "0"),
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
        (lambda c: c["scratch"].update(self_generator="weak"), "scratch.self_generator"),
        (lambda c: c["scratch"].update(self_generator="nobody"), "scratch.self_generator"),
        (lambda c: c["scratch"].update(sizes=[100, 5000]), "scratch.sizes"),
        (lambda c: c["finetune"].update(base="gpt"), "finetune.base"),
        (lambda c: c["finetune"]["partial"].update(sizes=[5000]), "finetune.sizes"),
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
