# The configuration, checked before any job; the names and paths every rule file shares; and the
# input and param functions of the rules.
from snakemake.utils import min_version, validate

from regurgitate.analysis.mitigations import mitigation_of
from regurgitate.jobs.stopping import forward_interrupts
from regurgitate.study import footprint
from regurgitate.study.config import (
    check_config,
    corpus_downloads,
    decoding_settings,
    experiment_runs,
    experiments,
    finetune_through_api,
    full_set_conditions,
    mitigation_conditions,
    self_generator,
    student_architecture,
    training_settings,
)
from regurgitate.study.vocabulary import (
    EXPERIMENTS as EXPERIMENT_NAMES,
    FINETUNE,
    HUMAN,
    POOLS,
    RECURSION,
    SELF,
    STRATEGIES,
    WILDCARD_CONSTRAINTS,
)

min_version("8.20")


validate(config, "../schemas/config.schema.yaml")
check_config(config)
# A SIGINT that reaches Snakemake alone stops the running jobs too, instead of waiting for them.
forward_interrupts()


wildcard_constraints:
    **WILDCARD_CONSTRAINTS,


ENV = "../envs/regurgitate.yaml"
EXPERIMENTS = experiments(config)
# E1 runs through the OpenAI fine-tuning API when its base is an openai generator; otherwise
# every experiment trains and decodes local models.
FINETUNE_API = finetune_through_api(config)
LOCAL_EXPERIMENTS = "|".join(
    e for e in EXPERIMENTS if not (FINETUNE_API and e == FINETUNE)
)
GENERATORS = config["generators"]
DEVICE = config.get("device", "auto")
PRECISION = config["training"].get("precision", "auto")
MECHANISMS = config["mechanisms"]  # the schema fills in the defaults
RESOURCES = config.get("resources", {})
TRAIN_THREADS = RESOURCES.get("train_threads", 1)
DECODE_THREADS = RESOURCES.get("decode_threads", 1)
# GPUs a training or decoding job asks the executor for: from `device` unless `resources.gpu`
# says (a CPU study asks for none), and their model where `resources.gpu_model` names one.
GPUS = footprint.gpus(config)
GPU_MODEL = RESOURCES.get("gpu_model") if GPUS else None
# Each heavy job's time and memory, from the study's scale (what
# `python -m regurgitate.study.footprint` prints), with the pools' sizes once they exist.
SCALE = footprint.Scale(config, made=footprint.pools_made(footprint.CLEANING_REPORT))
# A student's model is read only by its evaluation: temp() unless the config keeps it.
KEEP_STUDENT_MODELS = footprint.keeps_student_models(config)
# A regex of the openai and anthropic generators' names (one that matches none if there are none).
API_GENERATORS = (
    "|".join(name for name, g in GENERATORS.items() if g["backend"] != "local")
    or "(?!)"
)
MECHANISM_SOURCES = [HUMAN, *GENERATORS]


# --- generators -------------------------------------------------------------------------------


def is_local(generator):
    return GENERATORS[generator]["backend"] == "local"


def generator_settings(wildcards):
    return GENERATORS[wildcards.generator]


def generator_teacher_pairs(wildcards):
    return GENERATORS[wildcards.generator].get("teacher_pairs")


def generator_architecture(wildcards):
    return config["architectures"][GENERATORS[wildcards.generator]["architecture"]]


def generator_training(wildcards):
    return training_settings(config, GENERATORS[wildcards.generator].get("training"))


def generator_decoding(wildcards):
    return decoding_settings(config, GENERATORS[wildcards.generator].get("decoding"))


def generator_gpus(wildcards):
    return GPUS if is_local(wildcards.generator) else 0


def generator_gpu_model(wildcards):
    return GPU_MODEL if is_local(wildcards.generator) else None


def generator_labels(wildcards):
    """What a generator's metrics JSON says about it, beside its scores."""
    generator = GENERATORS[wildcards.generator]
    if not is_local(wildcards.generator):
        return {
            "generator": wildcards.generator,
            "architecture": f"{generator['backend']}:{generator['model']}",
        }
    return {
        "generator": wildcards.generator,
        "architecture": generator["architecture"],
        "teacher_pairs": generator.get("teacher_pairs"),
    }


def synthetic_inputs(wildcards):
    """A local generator translates with its trained model; an API generator needs none."""
    if not is_local(wildcards.generator):
        return {}
    return {
        "model": f"results/generators/{wildcards.generator}/model.pt",
        "tokenizer": "results/tokenizer/spm.model",
    }


def synthetic_decoding(wildcards):
    return generator_decoding(wildcards) if is_local(wildcards.generator) else {}


# --- curricula and students -------------------------------------------------------------------


def curriculum_seed(run_seed):
    """The seed that draws a run's sources and their order: the run's own (`curriculum_seed:
    run`), or the global `seed` for every run (`curriculum_seed: global`)."""
    return int(run_seed) if config["curriculum_seed"] == "run" else config["seed"]


def curriculum_path(experiment, condition, run_seed):
    """Where a condition's curriculum lives: `self` is the experiment's own model's output, so
    it depends on the experiment; every other curriculum is the same in every experiment.
    """
    seed = curriculum_seed(run_seed)
    if condition == SELF:
        return f"results/curricula/{experiment}/self/{seed}.parquet"
    return f"results/curricula/{condition}/{seed}.parquet"


def curriculum(wildcards):
    return curriculum_path(wildcards.experiment, wildcards.condition, wildcards.seed)


def curriculum_prefixes(wildcards=None):
    """Each run's curriculum and the prefix it trains on."""
    return [
        {
            "experiment": experiment,
            "condition": condition,
            "seed": seed,
            "size": size,
            "path": curriculum_path(experiment, condition, seed),
        }
        for experiment in EXPERIMENTS
        for condition, size, seed in experiment_runs(config, experiment)
    ]


def curriculum_files(wildcards):
    return sorted({prefix["path"] for prefix in curriculum_prefixes()})


def self_synthetic(wildcards):
    return f"results/synthetic/{self_generator(config, wildcards.experiment)}.parquet"


def self_generator_name(wildcards):
    return self_generator(config, wildcards.experiment)


def student_init(wildcards):
    """E1 students start from the base model; E2 students from scratch."""
    if wildcards.experiment == FINETUNE:
        return {"init": f"results/generators/{config[FINETUNE]['base']}/model.pt"}
    return {}


def student_rows(wildcards):
    return int(wildcards.size)


def student_architecture_of(wildcards):
    return student_architecture(config, wildcards.experiment)


def student_training(wildcards):
    experiment = config[wildcards.experiment]
    return training_settings(
        config,
        experiment.get("training"),
        {"seed": int(wildcards.seed), "select": experiment["select"]},
    )


def run_labels(wildcards):
    """What a student's metrics JSON says about its run, beside its scores."""
    return {
        "experiment": wildcards.experiment,
        "condition": wildcards.condition,
        "size": int(wildcards.size),
        "seed": int(wildcards.seed),
    }


def run_seed(wildcards):
    return int(wildcards.seed)


# --- runs and tables --------------------------------------------------------------------------


def run_metrics(experiment):
    return [
        f"results/runs/{experiment}/{condition}/{size}/{seed}/metrics.json"
        for condition, size, seed in experiment_runs(config, experiment)
    ]


def experiment_run_metrics(wildcards):
    return run_metrics(wildcards.experiment)


def run_hypotheses(metric_paths):
    """The test translations of each run, in the order of its metrics files."""
    return [path.replace("metrics.json", "test.hyp.txt") for path in metric_paths]


def experiment_run_hypotheses(wildcards):
    return run_hypotheses(run_metrics(wildcards.experiment))


def all_run_metrics(wildcards):
    return [path for experiment in EXPERIMENTS for path in run_metrics(experiment)]


def all_run_hypotheses(wildcards):
    return run_hypotheses(all_run_metrics(wildcards))


def experiment_tables(wildcards):
    return {e: f"results/tables/{e}.csv" for e in EXPERIMENTS}


def experiment_title(wildcards):
    return EXPERIMENT_NAMES[wildcards.experiment].title


EXPERIMENT_PANEL_TITLES = {e: EXPERIMENT_NAMES[e].short_title for e in EXPERIMENTS}


def full_sets():
    """Per experiment, where each generator's full synthetic set is read: its condition
    at the largest size."""
    return {
        experiment: {
            "size": max(config[experiment]["sizes"]),
            "conditions": full_set_conditions(config, experiment),
        }
        for experiment in EXPERIMENTS
    }


def reference_metrics(wildcards):
    """Reference lines of an experiment's figure: E1 draws the base model's own BLEU."""
    if wildcards.experiment == FINETUNE:
        base = config[FINETUNE]["base"]
        return {
            f"base model ({base}) before fine-tuning": f"results/generators/{base}/metrics.json"
        }
    return {}


def base_model_metrics(wildcards):
    """E1's table carries the base model's own BLEU."""
    return {"base": path for path in reference_metrics(wildcards).values()}


# --- data and mechanisms ----------------------------------------------------------------------


def corpus_archive(wildcards):
    if config["corpus"]["format"] == "europarl":
        return "resources/corpus/europarl-v7.tgz"
    return []


# Where a multi30k corpus's files are downloaded to: <split>.<de|en>.gz.
CORPUS_DOWNLOADS = corpus_downloads(config["corpus"])
MULTI30K_DIR = "resources/corpus/multi30k"


def corpus_parallel_files(wildcards):
    return [f"{MULTI30K_DIR}/{name}" for name in CORPUS_DOWNLOADS]


def corpus_download(file):
    """(URL, SHA-256) of one file of a multi30k corpus."""
    if file not in CORPUS_DOWNLOADS:
        raise ValueError(
            f"{MULTI30K_DIR}/{file}: not a file of the configured corpus "
            f"(corpus.train_split, corpus.test_split); those are {sorted(CORPUS_DOWNLOADS)}"
        )
    return CORPUS_DOWNLOADS[file]


def corpus_file_url(wildcards):
    return corpus_download(wildcards.file)[0]


def corpus_file_sha256(wildcards):
    return corpus_download(wildcards.file)[1]


def corpus_files(wildcards):
    """Local corpus files are inputs too, so that a changed file reruns preparation."""
    corpus = config["corpus"]
    if corpus["format"] == "multi30k":
        return []
    return [path for path in (corpus.get("tsv"), corpus.get("test_tsv")) if path]


def source_synthetic(wildcards):
    if wildcards.source == HUMAN:
        return {}
    return {"synthetic": f"results/synthetic/{wildcards.source}.parquet"}


# --- mitigations ------------------------------------------------------------------------------

MITIGATIONS = config.get("mitigations", {})
MITIGATED_EXPERIMENTS = MITIGATIONS.get("experiments", [])
# The generators S1 orders and S3 ranks, and the quality metrics S1 orders them by.
MITIGATED_GENERATORS = MITIGATIONS.get("generators", [])
CONFIGURED_QUALITY_METRICS = MITIGATIONS.get("metrics", [])
MIXES = ["+".join(mix) for mix in MITIGATIONS.get("mixes", [])]
# The strategies (S1, S2, S3) of the configured mitigated conditions (the sources- controls
# belong to none).
MITIGATION_STRATEGIES = sorted(
    {
        mitigation.strategy
        for experiment in EXPERIMENTS
        for condition in mitigation_conditions(config, experiment)
        if (mitigation := mitigation_of(condition))
    }
)
# The mitigations' tables that this configuration makes: every strategy adds to mitigations.csv;
# S1 also makes quality.csv and S3 detector.csv.
MITIGATION_TABLES = (
    [
        "mitigations",
        *[STRATEGIES[s].table for s in MITIGATION_STRATEGIES if STRATEGIES[s].table],
    ]
    if MITIGATION_STRATEGIES
    else []
)
MITIGATION_CURVES = {
    e: {
        s: {ext: f"results/figures/mitigations/{e}-{s}.{ext}" for ext in ("png", "pdf")}
        for s in MITIGATION_STRATEGIES
    }
    for e in MITIGATED_EXPERIMENTS
}


# Every table of the study: rule all asks for each with its page of the report (table_html).
TABLES = [
    *EXPERIMENTS,
    "generators",
    "curricula",
    "mechanisms",
    "partial",
    *MITIGATION_TABLES,
    *([RECURSION] if RECURSION in config else []),
]
# Where a table appears in the report, beside the figures of the same part of the study.
TABLE_CATEGORIES = {
    "curricula": "Experiments",
    "generators": "Generators",
    "mechanisms": "Mechanisms",
    "partial": "Partial real data",
    "mitigations": "Mitigations",
    "quality": "Mitigations",
    "detector": "Mitigations",
    "recursion": "Recursion",
}


def table_category(wildcards):
    if wildcards.table in EXPERIMENTS:
        return "Experiments"
    return TABLE_CATEGORIES.get(wildcards.table, "Tables")


def table_subcategory(wildcards):
    return wildcards.table if wildcards.table in EXPERIMENTS else None


def reverse_architecture(wildcards):
    return config["architectures"][MITIGATIONS["reverse_architecture"]]


def reverse_training(wildcards):
    return training_settings(config, MITIGATIONS.get("reverse_training"))


def nll_model(wildcards):
    """Dual cross-entropy scores a pair forward with `mitigations.forward_scorer`'s model and
    backward with the reverse model."""
    if wildcards.direction == "reverse":
        return "results/reverse/model.pt"
    return f"results/generators/{MITIGATIONS['forward_scorer']}/model.pt"


def quality_inputs(wildcards):
    """What the quality metrics of a generator's data need: other generators' translations
    (consensus), back-translations (round trip) and both directions' NLL (dual cross-entropy).
    """
    g = wildcards.generator
    inputs = {}
    if "consensus" in CONFIGURED_QUALITY_METRICS:
        inputs["others"] = [
            f"results/synthetic/{other}.parquet" for other in GENERATORS if other != g
        ]
    if "round_trip" in CONFIGURED_QUALITY_METRICS:
        inputs["back_translations"] = f"results/quality/backtranslation/{g}.parquet"
    if "dual_cross_entropy" in CONFIGURED_QUALITY_METRICS:
        inputs["forward_nll"] = f"results/quality/nll/forward/{g}.parquet"
        inputs["reverse_nll"] = f"results/quality/nll/reverse/{g}.parquet"
    return inputs


def mix_generators(wildcards):
    return wildcards.mix.split("+")


def mix_synthetics(wildcards):
    return {g: f"results/synthetic/{g}.parquet" for g in mix_generators(wildcards)}


def mix_curriculum_for_mechanisms(wildcards):
    """A mix's diversity is measured on the curriculum of the global seed, the order in which
    every other source's sample is drawn."""
    return measured_sources()[f"mixed-{wildcards.mix}"]


def measured_sources(wildcards=None):
    """Every source of targets whose diversity is measured, but the human one: each
    generator's synthetic data and each mix's curriculum (of the global seed)."""
    sources = {g: f"results/synthetic/{g}.parquet" for g in GENERATORS}
    for mix in MIXES:
        sources[f"mixed-{mix}"] = (
            f"results/curricula/mixed-{mix}/{config['seed']}.parquet"
        )
    return sources


def measured_source_paths(wildcards):
    return list(measured_sources().values())


def mitigated_run_metrics(wildcards):
    return [path for e in MITIGATED_EXPERIMENTS for path in run_metrics(e)]


def unmitigated_conditions(wildcards):
    """Per mitigated experiment, each generator's unmitigated condition (`self` or gen-<g>)."""
    return {e: full_set_conditions(config, e) for e in MITIGATED_EXPERIMENTS}


# --- what a job asks the executor for ---------------------------------------------------------
# The runtime (minutes) and memory (MB) of the jobs that train, decode or score with a model come
# from SCALE's estimate of the job; `--set-resources <rule>:runtime=<minutes>` (on the command
# line or in a profile) overrides them.


def runtime_of(estimate):
    def runtime(wildcards):
        return footprint.runtime_minutes(estimate(wildcards), config)

    return runtime


def mem_mb_of(estimate):
    def mem_mb(wildcards):
        return footprint.memory_mb(estimate(wildcards))

    return mem_mb


def tokenizer_scale(wildcards):
    return SCALE.tokenizer_training()


def generator_training_scale(wildcards):
    return SCALE.generator_training(wildcards.generator)


def synthetic_scale(wildcards):
    return SCALE.generation(wildcards.generator, "student")


def detector_pool_scale(wildcards):
    return SCALE.generation(wildcards.generator, "detector")


def generator_test_scale(wildcards):
    return SCALE.generation(wildcards.generator, "test")


def student_training_scale(wildcards):
    return SCALE.student_training(wildcards.experiment, int(wildcards.size))


def student_test_scale(wildcards):
    return SCALE.student_decoding(wildcards.experiment)


def recursion_training_scale(wildcards):
    """A generation trains on at most (generation + 1) x size rows (accumulate); its model is
    the student's of the experiment it starts from."""
    rows = int(wildcards.size) * (int(wildcards.generation) + 1)
    return SCALE.student_training(config[RECURSION]["experiment"], rows)


def recursion_decoding_scale(wildcards):
    return SCALE.student_decoding(config[RECURSION]["experiment"])


def reverse_training_scale(wildcards):
    return SCALE.reverse_training()


def back_translation_scale(wildcards):
    return SCALE.back_translation()


def pair_nll_scale(wildcards):
    return SCALE.pair_scoring(wildcards.direction)


def student_model(path):
    """A student's model file: temporary unless `keep_student_models`."""
    return path if KEEP_STUDENT_MODELS else temp(path)


# --- recursion (workflow/rules/recursion.smk) ------------------------------------------------

from regurgitate.study.config import (
    recursion_architecture,
    recursion_runs,
    recursion_training,
)
from regurgitate.study.recursion import parents
from regurgitate.study.vocabulary import (
    RECURSION,
    RECURSION_ROOT,
    RECURSION_TITLE,
    REAL,
)

RECURSION_SETTINGS = config.get(RECURSION, {})
RECURSION_RUN = "results/recursion/{regime}/{generation}/{size}/{seed}"


def recursion_dir(regime, generation, size, seed):
    """The folder of one run; generation 0 of every regime is the `real` one."""
    regime = RECURSION_ROOT if int(generation) == 0 else regime
    return RECURSION_RUN.format(
        regime=regime, generation=generation, size=size, seed=seed
    )


RECURSION_RUN_DIRS = [recursion_dir(*run) for run in recursion_runs(config)]
RECURSION_ROOTS = [
    recursion_dir(RECURSION_ROOT, 0, size, seed)
    for size in RECURSION_SETTINGS.get("sizes", [])
    for seed in RECURSION_SETTINGS.get("seeds", [])
]
RECURSION_TARGETS = (
    [
        "results/tables/recursion.csv",
        "results/figures/recursion.png",
        "results/figures/recursion.pdf",
    ]
    if RECURSION_SETTINGS
    else []
)


def recursion_root(wildcards):
    """Generation 0's curriculum of the run's lineage: its sources and their human targets."""
    root = recursion_dir(RECURSION_ROOT, 0, wildcards.size, wildcards.seed)
    return f"{root}/curriculum.parquet"


def recursion_parents(wildcards):
    return parents(wildcards.regime, int(wildcards.generation))


def recursion_curriculum_inputs(wildcards):
    """Generation 0 takes the `real` curriculum of its seed; generation n the lineage's human
    pairs and the translations of the generations it trains on."""
    generation_parents = recursion_parents(wildcards)
    if int(wildcards.generation) == 0:
        seed = curriculum_seed(wildcards.seed)
        return {"real": f"results/curricula/{REAL}/{seed}.parquet"}
    return {
        "human": recursion_root(wildcards),
        "translations": [
            f"{recursion_dir(wildcards.regime, g, wildcards.size, wildcards.seed)}/synthetic.parquet"
            for g in generation_parents
        ],
    }


def recursion_init(wildcards):
    """Fine-tuned generations start from the base model, each afresh."""
    if RECURSION_SETTINGS["experiment"] == FINETUNE:
        return {"init": f"results/generators/{config[FINETUNE]['base']}/model.pt"}
    return {}


def recursion_training_of(wildcards):
    return recursion_training(config, int(wildcards.seed))


def recursion_decoding():
    return decoding_settings(config, RECURSION_SETTINGS.get("decoding"))


def recursion_labels(wildcards):
    """What a generation's metrics and measures say about its run."""
    return {
        "regime": wildcards.regime,
        "generation": int(wildcards.generation),
        "size": int(wildcards.size),
        "seed": int(wildcards.seed),
    }


def recursion_files(name):
    return [f"{run}/{name}" for run in RECURSION_RUN_DIRS]


def recursion_measure_settings():
    return {
        **{
            key: MECHANISMS[key]
            for key in ("chrf_threshold", "bootstrap", "keep_punctuation")
        },
        "tail_max_count": RECURSION_SETTINGS.get("tail_max_count"),
    }


def recursion_with_human(wildcards):
    return int(wildcards.generation) == 0
