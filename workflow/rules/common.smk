from snakemake.utils import min_version, validate

from regurgitate.mitigations import mitigation_of
from regurgitate.config import (
    HUMAN,
    check_config,
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

min_version("8.20")


validate(config, "../schemas/config.schema.yaml")
check_config(config)


wildcard_constraints:
    experiment="scratch|finetune",
    generator="[A-Za-z0-9_]+",
    condition="real|self|(gen|detector)-[A-Za-z0-9_]+|(partial|ordered)-[A-Za-z0-9_]+-[A-Za-z0-9_]+|mixed-[A-Za-z0-9_]+(\+[A-Za-z0-9_]+)+",
    mix="[A-Za-z0-9_]+(\+[A-Za-z0-9_]+)+",
    metric="[A-Za-z0-9_]+",
    percent="[0-9]+",
    source="[A-Za-z0-9_]+",
    size="[0-9]+",
    seed="[0-9]+",


ENV = "../../envs/regurgitate.yaml"
POOLS = ["teacher", "student", "detector", "dev", "test"]
EXPERIMENTS = experiments(config)
# E1 runs through the OpenAI fine-tuning API when its base is an openai generator; otherwise
# every experiment trains and decodes local models.
FINETUNE_API = finetune_through_api(config)
LOCAL_EXPERIMENTS = "scratch" if FINETUNE_API else "scratch|finetune"
MECHANISMS = config["mechanisms"]  # the schema fills in the defaults
RESOURCES = config.get("resources", {})
TRAIN_THREADS = RESOURCES.get("train_threads", 1)
DECODE_THREADS = RESOURCES.get("decode_threads", 1)
GPUS = RESOURCES.get("gpu", 0)
# A regex of the openai and anthropic generators' names (one that matches none if there are none).
API_GENERATORS = (
    "|".join(
        name for name, g in config["generators"].items() if g["backend"] != "local"
    )
    or "(?!)"
)


def generator_training(wildcards):
    generator = config["generators"][wildcards.generator]
    return training_settings(config, generator.get("training"))


def generator_decoding(wildcards):
    return decoding_settings(
        config, config["generators"][wildcards.generator].get("decoding")
    )


def is_local(generator):
    return config["generators"][generator]["backend"] == "local"


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


def generator_architecture(wildcards):
    return config["architectures"][
        config["generators"][wildcards.generator]["architecture"]
    ]


def run_metrics(experiment):
    return [
        f"results/runs/{experiment}/{condition}/{size}/{seed}/metrics.json"
        for condition, size, seed in experiment_runs(config, experiment)
    ]


def experiment_run_metrics(wildcards):
    return run_metrics(wildcards.experiment)


def all_run_metrics(wildcards=None):
    return [path for experiment in EXPERIMENTS for path in run_metrics(experiment)]


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


def self_synthetic(wildcards):
    return f"results/synthetic/{self_generator(config, wildcards.experiment)}.parquet"


def student_init(wildcards):
    """E1 students start from the base model; E2 students from scratch."""
    if wildcards.experiment == "finetune":
        return {"init": f"results/generators/{config['finetune']['base']}/model.pt"}
    return {}


def student_training(wildcards):
    experiment = config[wildcards.experiment]
    return training_settings(
        config, experiment.get("training"), {"seed": int(wildcards.seed)}
    )


def reference_metrics(wildcards):
    """Reference lines of an experiment's figure: E1 draws the base model's own BLEU."""
    if wildcards.experiment == "finetune":
        base = config["finetune"]["base"]
        return {
            f"base model ({base}) before fine-tuning": f"results/generators/{base}/metrics.json"
        }
    return {}


def source_synthetic(wildcards):
    if wildcards.source == HUMAN:
        return {}
    return {"synthetic": f"results/synthetic/{wildcards.source}.parquet"}


def corpus_archive(wildcards):
    if config["corpus"]["format"] == "europarl":
        return "resources/corpus/europarl-v7.tgz"
    return []


def corpus_files(wildcards):
    """Local corpus files are inputs too, so that a changed file reruns preparation."""
    corpus = config["corpus"]
    return [path for path in (corpus.get("tsv"), corpus.get("test_tsv")) if path]


EXPERIMENT_TITLES = {
    "scratch": "Students trained from scratch (E2): human vs generated targets",
    "finetune": "Base model fine-tuned (E1): human vs generated targets",
}
MECHANISM_SOURCES = [HUMAN, *config["generators"]]

MITIGATIONS = config.get("mitigations", {})
QUALITY_GENERATORS = MITIGATIONS.get("generators", [])
QUALITY_METRICS = MITIGATIONS.get("metrics", [])


def quality_inputs(wildcards):
    """What the quality metrics of a generator's data need: other generators' translations
    (consensus), back-translations (round trip) and both directions' NLL (dual cross-entropy).
    """
    g = wildcards.generator
    inputs = {}
    if "consensus" in QUALITY_METRICS:
        inputs["others"] = [
            f"results/synthetic/{other}.parquet"
            for other in config["generators"]
            if other != g
        ]
    if "round_trip" in QUALITY_METRICS:
        inputs["back_translations"] = f"results/quality/backtranslation/{g}.parquet"
    if "dual_cross_entropy" in QUALITY_METRICS:
        inputs["forward_nll"] = f"results/quality/nll/forward/{g}.parquet"
        inputs["reverse_nll"] = f"results/quality/nll/reverse/{g}.parquet"
    return inputs


def mix_synthetics(wildcards):
    return {g: f"results/synthetic/{g}.parquet" for g in wildcards.mix.split("+")}


def mitigated_experiments():
    return MITIGATIONS.get("experiments", [])


# The strategies (S1, S2, S3) of the configured mitigated conditions.
MITIGATION_STRATEGIES = sorted(
    {
        mitigation_of(condition).strategy
        for experiment in EXPERIMENTS
        for condition in mitigation_conditions(config, experiment)
    }
)
# The mitigations' tables that this configuration makes: quality needs S1, detector S3.
MITIGATION_TABLES = [
    name
    for name, strategy in (("mitigations", None), ("quality", "S1"), ("detector", "S3"))
    if MITIGATION_STRATEGIES and (strategy is None or strategy in MITIGATION_STRATEGIES)
]
