"""The profiles a cluster run uses (profiles/) and what the workflow's jobs ask of an executor."""

import re

import pytest
import yaml
from conftest import REPO, TINY, run_snakemake, write_toy_corpus

PROFILES = REPO / "profiles"
CLUSTER_PROFILES = ["slurm", "generic"]
# The rules whose jobs train, decode or score with a model: the ones that ask for GPUs.
GPU_RULES = {
    "train_generator", "generate_synthetic", "evaluate_generator", "train_student",
    "evaluate_run", "train_reverse", "back_translate", "pair_nll", "generate_detector_pool",
    "train_recursion", "translate_recursion", "evaluate_recursion",
}  # fmt: skip


def profile(name: str) -> dict:
    # The workflow profile sits beside the Snakefile, where Snakemake finds it from any folder.
    folder = REPO / "workflow" / "profiles" / name if name == "default" else PROFILES / name
    return yaml.safe_load((folder / "config.yaml").read_text())


@pytest.mark.parametrize("name", CLUSTER_PROFILES)
def test_the_default_profile_overrides_nothing_a_cluster_profile_sets(name):
    """Snakemake reads workflow/profiles/default after `--profile` and its keys win, so every key it
    has is in each cluster profile with the same value."""
    default, cluster = profile("default"), profile(name)
    assert {key: cluster.get(key) for key in default} == default


def test_slurm_profile_asks_only_what_the_plugin_accepts():
    slurm = profile("slurm")
    assert slurm["executor"] == "slurm"
    text = (PROFILES / "slurm" / "config.yaml").read_text()
    assert "slurm_extra" not in text and "--gres" not in text  # refused since plugin 1.9.0
    assert "set-resources" not in slurm  # GPUs, runtime and memory come from the config
    resources = slurm["default-resources"]
    assert resources["slurm_account"] is None and resources["slurm_partition"] is None
    assert slurm["latency-wait"] >= 60 and slurm["retries"] >= 1


def job_resources(workdir, *args) -> dict[str, list[dict]]:
    """Each rule's jobs' resources, as a dry run of the tiny study prints them."""
    write_toy_corpus(workdir / "data" / "corpus.tsv", 1500)
    result = run_snakemake(workdir, TINY, "--dry-run", *args)
    jobs: dict[str, list[dict]] = {}
    for rule, resources in re.findall(
        r"^(?:local)?rule (\w+):\n(?:    .*\n)*?    resources: (.*)$",
        result.stdout,
        flags=re.MULTILINE,
    ):
        values = dict(item.split("=", 1) for item in resources.split(", "))
        jobs.setdefault(rule, []).append(values)
    return jobs


@pytest.mark.slow
def test_gpus_are_asked_for_by_the_jobs_that_use_them_when_the_study_runs_on_cuda(tmp_path):
    cpu = job_resources(tmp_path)
    assert set(GPU_RULES) <= set(cpu)
    assert all(job.get("gpu", "0") == "0" for jobs in cpu.values() for job in jobs)
    cuda = job_resources(tmp_path, "--config", "device=cuda", "resources={gpu_model: a100}")
    for rule, jobs in cuda.items():
        for job in jobs:
            wanted = ("1", "a100") if rule in GPU_RULES else (None, None)
            assert (job.get("gpu"), job.get("gpu_model")) == wanted, rule
    # runtime and memory follow the scale: the tiny study's jobs ask for little
    for rule in GPU_RULES:
        assert all(int(job["runtime"]) <= 60 for job in cpu[rule]), rule
        assert all(int(job["mem_mb"]) <= 2000 for job in cpu[rule]), rule
