"""The study through snakemake-executor-plugin-slurm with profiles/slurm as shipped (but for the
two keys a user fills in), on a real single-node SLURM the test starts itself (tests/slurm.py):
every job goes through sbatch, srun and sacct of the real daemons. Skipped unless
REGURGITATE_TEST_SLURM=1 (they change the machine: packages and daemons), and skipped, saying why,
where SLURM cannot be installed or started."""

import re
import subprocess
import sys
from collections import Counter

import pytest
import yaml
from conftest import REPO, TINY, write_toy_corpus
from slurm import (
    ACCOUNT,
    GPU_TYPE,
    HOW_TO_ENABLE,
    PARTITION,
    Cluster,
    SlurmUnavailable,
    enabled,
    install,
)

# A mark, not a skip in the `cluster` fixture: pytest sets up the session's `finished_run` (a
# whole local study) before a module's fixtures, so a fixture's skip would come after it.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not enabled(), reason=f"the SLURM tests are off; {HOW_TO_ENABLE}"),
]

# A part of the tiny study that holds a job of every kind a cluster runs (pools, tokenizer,
# training, decoding, scoring, mechanisms) and local rules beside them; the whole study is about
# 200 jobs, too many for the suite's time on two cores.
TARGETS = [
    "results/tables/generators.csv",
    "results/runs/scratch/gen-weak/100/1/metrics.json",
    "results/mechanisms/weak.json",
]
SUBMITTED = {
    "prepare_pools": 1,
    "train_tokenizer": 1,
    "train_generator": 2,
    "evaluate_generator": 2,
    # the mechanisms sample as many tokens from every source, so every source is made
    "generate_synthetic": 2,
    "train_student": 1,
    "evaluate_run": 1,
    "mechanisms_source": 1,
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    pytest.importorskip(
        "snakemake_executor_plugin_slurm", reason="pip install -e '.[test]' installs it"
    )
    cluster = None
    try:
        install()
        cluster = Cluster(tmp_path_factory.mktemp("slurm"))
        cluster.start()
    except SlurmUnavailable as err:
        if cluster:
            cluster.stop()
        pytest.skip(f"no SLURM here: {err}")
    yield cluster
    cluster.stop()


def filled_in_profile(tmp_path):
    """profiles/slurm as a user fills it in: the account and the partition, nothing else."""
    settings = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    settings["default-resources"].update(slurm_account=ACCOUNT, slurm_partition=PARTITION)
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    (profile / "config.yaml").write_text(yaml.safe_dump(settings))
    return profile


def run_on_cluster(cluster, workdir, configfile, *arguments):
    command = [
        sys.executable, "-m", "snakemake", "-s", str(REPO / "workflow" / "Snakefile"),
        "--configfile", str(configfile), "--profile", str(filled_in_profile(workdir)),
        # jobs here take seconds: ask for their state every few seconds, not every 40
        "--slurm-init-seconds-before-status-checks", "2", *arguments,
    ]  # fmt: skip
    result = subprocess.run(command, cwd=workdir, env=cluster.env, capture_output=True, text=True)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:] + cluster.logs()
    return output


def accounted_jobs(cluster) -> list[dict]:
    """Every job the cluster's accounting holds: its rule (from the plugin's job comment),
    state, account, partition and the resources it asked for and SLURM gave it."""
    fields = ["JobID", "State", "Account", "Partition", "ReqTRES", "AllocTRES", "Comment"]
    result = cluster.run(
        "sacct", "-X", "-n", "-P", "-a", "-S", "2000-01-01", f"--format={','.join(fields)}"
    )
    jobs = [dict(zip(fields, line.split("|"), strict=True)) for line in result.stdout.splitlines()]
    for job in jobs:
        job["rule"] = job["Comment"].removeprefix("rule_").split("_wildcards_")[0]
    return jobs


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory):
    """The part of the tiny study run through SLURM: its working directory, Snakemake's output,
    and the jobs the cluster's accounting holds of it."""
    workdir = tmp_path_factory.mktemp("study")
    write_toy_corpus(workdir / "data" / "corpus.tsv", 1500)
    output = run_on_cluster(cluster, workdir, TINY, *TARGETS)
    return workdir, output, accounted_jobs(cluster)


def test_tiny_study_through_slurm_equals_a_local_run(slurm_run, finished_run):
    workdir, output, jobs = slurm_run
    assert Counter(job["rule"] for job in jobs) == SUBMITTED, output[-4000:]
    assert output.count("has been submitted with SLURM jobid") == sum(SUBMITTED.values())
    for job in jobs:
        assert job["State"] == "COMPLETED" and job["Account"] == ACCOUNT, job
        assert job["Partition"] == PARTITION and "gpu" not in job["ReqTRES"], job
    # The cheap rules ran beside Snakemake, not as cluster jobs.
    assert "localrule curriculum_gen:" in output and "localrule table_generators:" in output

    # Every file it made (tables, Parquet, hypotheses, models, the tokenizer) equals the local
    # run's byte for byte.
    made = sorted(p.relative_to(workdir) for p in (workdir / "results").rglob("*") if p.is_file())
    assert len(made) > 20, made
    different = [
        str(path)
        for path in made
        if (workdir / path).read_bytes() != (finished_run / path).read_bytes()
    ]
    assert different == []
    for generator in ("weak", "strong"):
        assert (workdir / f"results/generators/{generator}/model.pt").exists()
    # The student's model went once its evaluation had read it; the generators' stay.
    assert not (workdir / "results/runs/scratch/gen-weak/100/1/model.pt").exists()


def test_gpu_jobs_ask_slurm_for_their_gpus(cluster, slurm_run, tmp_path):
    """A study that asks for GPUs (as `device: cuda` does; here `resources.gpu` and
    `gpu_model`, so that training still runs on this machine's CPU) gets them from SLURM through
    the plugin's gpu and gpu_model resources: a generator trained again asks for one."""
    workdir, _, _ = slurm_run
    known = {job["JobID"] for job in accounted_jobs(cluster)}
    config = yaml.safe_load(TINY.read_text())
    config["resources"].update(gpu=1, gpu_model=GPU_TYPE)
    configfile = tmp_path / "gpu.yaml"
    # in the file's order: Snakemake compares params as written, and a reordered dict would rerun
    # the jobs upstream
    configfile.write_text(yaml.safe_dump(config, sort_keys=False))
    target = "results/generators/weak/model.pt"
    # the target first: --forcerun takes every name after it
    run_on_cluster(cluster, workdir, configfile, target, "--forcerun", "train_generator")

    jobs = [job for job in accounted_jobs(cluster) if job["JobID"] not in known]
    assert [job["rule"] for job in jobs] == ["train_generator"]
    assert jobs[0]["State"] == "COMPLETED"
    assert f"gres/gpu:{GPU_TYPE}=1" in jobs[0]["ReqTRES"], jobs  # the model asked for


def test_generic_profile_submits_through_a_batch_system(cluster, slurm_run, finished_run):
    """profiles/generic (the generic cluster executor) with the submit command its comments give
    for SLURM without the plugin: the job script, the resources in the command and the marker
    files that tell Snakemake a job ended, on a real batch system."""
    workdir, _, _ = slurm_run
    known = {job["JobID"] for job in accounted_jobs(cluster)}
    text = (REPO / "profiles" / "generic" / "config.yaml").read_text()
    settings = yaml.safe_load(text)
    sbatch = re.search(r"^#\s+SLURM without its plugin: (.*)$", text, re.MULTILINE).group(1)
    settings["cluster-generic-submit-cmd"] = f"mkdir -p logs/cluster && {sbatch}"
    profile = workdir / "generic-profile"
    profile.mkdir(exist_ok=True)
    (profile / "config.yaml").write_text(yaml.safe_dump(settings))
    command = [
        sys.executable, "-m", "snakemake", "-s", str(REPO / "workflow" / "Snakefile"),
        "--configfile", str(TINY), "--profile", str(profile),
        "results/tokenizer/spm.model", "--forcerun", "train_tokenizer",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=workdir, env=cluster.env, capture_output=True, text=True)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:] + cluster.logs()

    jobs = [job for job in accounted_jobs(cluster) if job["JobID"] not in known]
    assert len(jobs) == 1 and jobs[0]["State"] == "COMPLETED", jobs
    assert "cpu=2" in jobs[0]["AllocTRES"], jobs  # the tokenizer's two threads
    path = "results/tokenizer/spm.vocab"
    assert (workdir / path).read_bytes() == (finished_run / path).read_bytes()
