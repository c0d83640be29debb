# The configuration, checked before any job, and what the rule files share (values derived from
# it, the folder of a run, and what a job that uses a model asks the executor for). What one
# stage alone needs lives in its own file.
import os
import sys

from snakemake.utils import min_version, validate

from regurgitate.generators.open_weights_settings import BACKEND as OPEN_WEIGHTS
from regurgitate.generators.open_weights_settings import finetune_open_weights
from regurgitate.jobs.stopping import forward_interrupts
from regurgitate.study import footprint
from regurgitate.study.config import (
    check_config,
    check_pool_demands,
    decoding_settings,
    experiment_runs,
    experiments,
    finetune_through_api,
    null_pools,
    pool_demands,
    pools_for_config,
)
from regurgitate.study.config_file import (
    check_config_files,
    check_report_config,
    check_types,
    merge_config,
    parse_overrides,
    read_schema,
    record_run,
)
from regurgitate.study.vocabulary import FINETUNE, SELF, WILDCARD_CONSTRAINTS

min_version("8.20")

DEFAULT_CONFIG = "config/config.yaml"
# A --configfile replaces the default study instead of being merged into it, so that a preset
# never inherits keys (generators, overrides) that it does not name; --config still overrides.
# Each file is read once more, strictly, first: YAML alone keeps the last of two equal keys
# without a word, and Snakemake's message for a tab gives no line.
check_config_files(workflow.overwrite_configfiles or [DEFAULT_CONFIG])
if not workflow.overwrite_configfiles:

    configfile: DEFAULT_CONFIG


# Snakemake reads the values inside a nested --config {...} as strings; read them as YAML.
merge_config(config, parse_overrides(workflow.config_settings.config_args))
check_types(config, read_schema(f"{workflow.basedir}/schemas/config.schema.yaml"))
validate(config, "../schemas/config.schema.yaml")
check_config(config)
# Sizes that depend on how many pairs the corpus gave a `null` pool, checked at once where the
# pools exist (the check_pools job checks them where they do not yet).
POOL_DEMANDS = pool_demands(config)
check_pool_demands(
    POOL_DEMANDS,
    pools_for_config("results/pools/cleaning.json", config),
    null_pools(config),
)
# What each run is made with (written as it starts, see onstart), so that a report asked for
# with another config says which one the results came from. Snakemake tells a Snakefile nothing
# of a --report call but its command line.
RUN_RECORD = ".snakemake/regurgitate/run.json"
if any(arg.split("=")[0] == "--report" for arg in sys.argv):
    check_report_config(RUN_RECORD, config)
# A SIGINT that reaches Snakemake alone stops the running jobs too, instead of waiting for them.
forward_interrupts()


wildcard_constraints:
    **WILDCARD_CONSTRAINTS,


# The conda environment of every rule (--sdm conda). Its post-deploy script installs the package
# from this checkout, which it finds here: Snakemake runs a copy of the script from .snakemake/.
# (Set here for the script, not read: no `envvars:` to assert.)
os.environ.update(REGURGITATE_SOURCE=os.path.dirname(workflow.basedir))
ENV = "../envs/regurgitate.yaml"
EXPERIMENTS = experiments(config)
# E1 runs through the OpenAI fine-tuning API when its base is an openai generator; otherwise
# every experiment trains and decodes local models.
FINETUNE_API = finetune_through_api(config)
# E1 fine-tunes a Hugging Face model here when its base is a huggingface generator
# (rules/open_weights.smk).
FINETUNE_OPEN_WEIGHTS = finetune_open_weights(config)
# A regex of the experiments whose students are local models, for wildcard_constraints.
LOCAL_EXPERIMENT_PATTERN = "|".join(
    e
    for e in EXPERIMENTS
    if not ((FINETUNE_API or FINETUNE_OPEN_WEIGHTS) and e == FINETUNE)
)
GENERATORS = config["generators"]
DEVICE = config.get("device", "auto")
PRECISION = config["training"].get("precision", "auto")
MECHANISMS = config["mechanisms"]  # the schema fills in the defaults
MIXES = ["+".join(mix) for mix in config.get("mitigations", {}).get("mixes", [])]
RESOURCES = config.get("resources", {})
TRAIN_THREADS = RESOURCES.get("train_threads", 1)
DECODE_THREADS = RESOURCES.get("decode_threads", 1)

# Every job that trains a model waits for the pools' sizes and lengths to be checked, but a
# check run again (the config's sizes changed) does not make finished models stale.
POOLS_CHECKED = ancient("results/pools/checks.json")

# A student's run: its id (in results, logs, benchmarks and checkpoints) and its folder.
RUN = "{experiment}/{condition}/{size}/{seed}"
RUN_DIR = f"results/runs/{RUN}"


def get_run_seed(wildcards):
    return int(wildcards.seed)


def get_run_labels(wildcards):
    """What a run's metrics and measures say about it, beside its scores: its wildcards, the
    numbers as numbers."""
    numbers = ("size", "seed", "generation")
    return {
        name: int(value) if name in numbers else value
        for name, value in wildcards.items()
    }


def curriculum_path(experiment, condition, run_seed):
    """Where a condition's curriculum lives. Its seed is the run's own (`curriculum_seed: run`)
    or the global `seed` for every run (`curriculum_seed: global`). `self` is the experiment's
    own model's output, so it depends on the experiment; every other curriculum is the same in
    every experiment."""
    seed = int(run_seed) if config["curriculum_seed"] == "run" else config["seed"]
    if condition == SELF:
        return f"results/curricula/{experiment}/self/{seed}.parquet"
    return f"results/curricula/{condition}/{seed}.parquet"


def run_metrics(experiment):
    """The metrics file of every run of an experiment, in the order of experiment_runs."""
    return [
        f"{RUN_DIR}/metrics.json".format(
            experiment=experiment, condition=condition, size=size, seed=seed
        )
        for condition, size, seed in experiment_runs(config, experiment)
    ]


def run_hypotheses(metric_paths):
    """The test translations of each run, in the order of its metrics files."""
    return [path.replace("metrics.json", "test.hyp.txt") for path in metric_paths]


def base_model(experiment):
    """The model a student of `experiment` starts from: E1's base model; none (from scratch)
    for E2."""
    if experiment == FINETUNE:
        return {"init": f"results/generators/{config[FINETUNE]['base']}/model.pt"}
    return {}


# The sources of targets whose lexical diversity the mechanisms measure, but the human one: each
# generator's synthetic data and each mix's curriculum (of the global seed, the order in which
# every other source's sample is drawn).
MEASURED_SOURCES = {g: f"results/synthetic/{g}.parquet" for g in GENERATORS} | {
    f"mixed-{mix}": curriculum_path(None, f"mixed-{mix}", config["seed"])
    for mix in MIXES
}


# --- generators -------------------------------------------------------------------------------


def is_local_generator(wildcards):
    return GENERATORS[wildcards.generator]["backend"] == "local"


def runs_a_model(wildcards):
    """Whether a generator's job runs a model here (and so may use a GPU): a local or an
    open-weight one; an API generator waits on its server."""
    return GENERATORS[wildcards.generator]["backend"] in ("local", OPEN_WEIGHTS)


def get_generator(wildcards):
    return GENERATORS[wildcards.generator]


def get_generator_decoding(wildcards):
    return decoding_settings(config, GENERATORS[wildcards.generator].get("decoding"))


def get_generator_model(wildcards):
    """A local generator translates with its trained model; an API generator needs none."""
    if not is_local_generator(wildcards):
        return {}
    return {
        "model": f"results/generators/{wildcards.generator}/model.pt",
        "tokenizer": "results/tokenizer/spm.model",
    }


# --- what a job that uses a model asks the executor for ---------------------------------------

# GPUs such a job asks for: from `device` unless `resources.gpu` says (a CPU study asks for
# none), and their model where `resources.gpu_model` names one.
GPUS = footprint.gpus(config)
GPU_MODEL = RESOURCES.get("gpu_model") if GPUS else None
# Each job's time and memory, from the study's scale (what `python -m regurgitate.study.footprint`
# prints), with the pools' sizes once they exist.
SCALE = footprint.Scale(config, made=footprint.pools_made(footprint.CLEANING_REPORT))


def model_job(estimate, uses_gpu=None):
    """The resources of a job that trains, decodes or scores with a model: runtime (minutes) and
    memory (MB) from `estimate(wildcards)`, one of SCALE's estimates, and the study's GPUs, or
    none where `uses_gpu(wildcards)` says the job does not use a local model.
    `--set-resources <rule>:runtime=<minutes>` (on the command line or in a profile) overrides
    them."""

    def gpu(wildcards):
        return GPUS if uses_gpu(wildcards) else 0

    def gpu_model(wildcards):
        return GPU_MODEL if uses_gpu(wildcards) else None

    return {
        "mem_mb": lambda wildcards: footprint.memory_mb(estimate(wildcards)),
        "runtime": lambda wildcards: footprint.runtime_minutes(
            estimate(wildcards), config
        ),
        "gpu": gpu if uses_gpu else GPUS,
        "gpu_model": gpu_model if uses_gpu else GPU_MODEL,
    }


# A study on CUDA stops before its first job on a machine without it. Not at parse time: the
# executor is known only here, and jobs that run elsewhere (a cluster: its login node needs no
# GPU) or not at all (a dry run, which runs no hooks) need no GPU here. Then the run's options
# are recorded (RUN_RECORD), and the rule graph of its DAG (RULE_GRAPH, drawn by
# figure_rule_graph; a DAG without rule all, of some targets alone, is not recorded). The DAG
# holds every job of the run's targets, finished ones too.
onstart:
    if workflow.local_exec:
        from regurgitate.engine.device import require_device

        require_device(DEVICE)
    record_run(
        RUN_RECORD,
        workflow.overwrite_configfiles or [DEFAULT_CONFIG],
        workflow.config_settings.config_args or [],
        config,
    )
    from collections import Counter
    from regurgitate.jobs.rule_graph import record_rule_graph

    depends_on, jobs, files = {}, Counter(), {}
    for dag_job, dag_dependencies in workflow.dag.dependencies.items():
        depends_on.setdefault(dag_job.rule.name, set()).update(
            dependency.rule.name for dependency in dag_dependencies
        )
        jobs[dag_job.rule.name] += 1
        files[dag_job.rule.name] = os.path.relpath(
            str(dag_job.rule.snakefile), workflow.basedir
        )
    record_rule_graph(RULE_GRAPH, depends_on, jobs=jobs, files=files)
