from snakemake.utils import min_version, validate

from regurgitate.config import (
    check_config,
    cross_generators,
    decoding_settings,
    scratch_conditions,
    training_settings,
)

min_version("8.20")


validate(config, "../schemas/config.schema.yaml")
check_config(config)


wildcard_constraints:
    experiment="scratch|finetune",
    generator="[A-Za-z0-9_]+",
    condition="real|self|gen-[A-Za-z0-9_]+",
    size="[0-9]+",
    seed="[0-9]+",


ENV = "../../envs/regurgitate.yaml"
POOLS = ["teacher", "student", "detector", "dev", "test"]
SCRATCH = config["scratch"]
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


def scratch_runs(wildcards=None):
    return expand(
        "results/runs/scratch/{condition}/{size}/{seed}/metrics.json",
        condition=scratch_conditions(config),
        size=SCRATCH["sizes"],
        seed=SCRATCH["seeds"],
    )


def corpus_archive(wildcards):
    if config["corpus"]["format"] == "europarl":
        return "resources/corpus/europarl-v7.tgz"
    return []


def corpus_files(wildcards):
    """Local corpus files are inputs too, so that a changed file reruns preparation."""
    corpus = config["corpus"]
    return [path for path in (corpus.get("tsv"), corpus.get("test_tsv")) if path]
