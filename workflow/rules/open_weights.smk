# The open-weight arm: huggingface generators scored on the test set, and E1 and the recursion on
# an open-weight base. A run fine-tunes the base on its curriculum prefix into a folder (the
# LoRA adapter, or full weights) and translates the test set with the generator's code; it writes
# the train.json, metrics.json and test.hyp.txt that every other run writes, so tables, tests,
# mechanisms and mitigations read it unchanged. (generate_synthetic writes the synthetic data.)
from regurgitate.generators.open_weights_settings import (
    finetune_method,
    open_weights_generators,
    recursion_open_weights,
)
from regurgitate.study import open_weights_footprint

OPEN_WEIGHTS_PATTERN = "|".join(open_weights_generators(config)) or "(?!)"
OPEN_WEIGHTS_BASE = config[FINETUNE]["base"] if FINETUNE_OPEN_WEIGHTS else None
# A run's fine-tuned model is read only by its evaluation: temporary unless
# `keep_student_models` (a full fine-tuning's weights are the base's size).
OPEN_WEIGHTS_RUN_MODEL = directory(f"{RUN_DIR}/model")
if not footprint.keeps_student_models(config):
    OPEN_WEIGHTS_RUN_MODEL = temp(OPEN_WEIGHTS_RUN_MODEL)


rule evaluate_open_weights_generator:
    input:
        test="results/pools/test.parquet",
    output:
        metrics="results/generators/{generator}/metrics.json",
        hypotheses="results/generators/{generator}/test.hyp.txt",
    log:
        "logs/evaluate_generator/{generator}.log",
    benchmark:
        "benchmarks/results/evaluate_open_weights_generator/{generator}.tsv"
    wildcard_constraints:
        generator=OPEN_WEIGHTS_PATTERN,
    conda:
        ENV
    threads: DECODE_THREADS
    resources:
        **model_job(
            lambda wildcards: open_weights_footprint.generation(
                SCALE, wildcards.generator, "test"
            )
        ),
    params:
        name="{generator}",
        generator=get_generator,
        prompts=config.get("prompts"),
        labels=lambda wildcards: generator_labels(
            wildcards.generator, GENERATORS[wildcards.generator]
        ),
        device=DEVICE,
    script:
        "../scripts/evaluate_open_weights.py"


ruleorder: evaluate_open_weights_generator > evaluate_api_generator > evaluate_generator


if FINETUNE_OPEN_WEIGHTS:

    rule finetune_open_weights:
        input:
            pairs=lambda wildcards: curriculum_path(
                wildcards.experiment, wildcards.condition, wildcards.seed
            ),
            dev="results/pools/dev.parquet",
        output:
            model=OPEN_WEIGHTS_RUN_MODEL,
            summary=f"{RUN_DIR}/train.json",
        log:
            f"logs/train_student/{RUN}.log",
        benchmark:
            f"benchmarks/results/finetune_open_weights/{RUN}.tsv"
        wildcard_constraints:
            experiment=FINETUNE,
        conda:
            ENV
        threads: TRAIN_THREADS
        resources:
            **model_job(
                lambda wildcards: open_weights_footprint.finetuning(
                    SCALE, int(wildcards.size)
                )
            ),
        params:
            rows=lambda wildcards: int(wildcards.size),
            base=OPEN_WEIGHTS_BASE,
            generator=GENERATORS[OPEN_WEIGHTS_BASE],
            prompts=config.get("prompts"),
            training=lambda wildcards: training_settings(
                config,
                config[FINETUNE].get("training"),
                {"seed": int(wildcards.seed), "select": config[FINETUNE]["select"]},
            ),
            method=finetune_method(config),
            # Not an output: Snakemake deletes a failed job's outputs.
            checkpoint=f"results/checkpoints/{RUN}/last.pt",
            device=DEVICE,
        script:
            "../scripts/finetune_open_weights.py"

    rule evaluate_open_weights_run:
        input:
            model=f"{RUN_DIR}/model",
            summary=f"{RUN_DIR}/train.json",
            test="results/pools/test.parquet",
        output:
            metrics=f"{RUN_DIR}/metrics.json",
            hypotheses=f"{RUN_DIR}/test.hyp.txt",
        log:
            f"logs/evaluate_run/{RUN}.log",
        benchmark:
            f"benchmarks/results/evaluate_open_weights_run/{RUN}.tsv"
        wildcard_constraints:
            experiment=FINETUNE,
        conda:
            ENV
        threads: DECODE_THREADS
        resources:
            **model_job(
                lambda wildcards: open_weights_footprint.generation(
                    SCALE, OPEN_WEIGHTS_BASE, "test"
                )
            ),
        params:
            name=OPEN_WEIGHTS_BASE,
            generator=GENERATORS[OPEN_WEIGHTS_BASE],
            prompts=config.get("prompts"),
            labels=get_run_labels,
            device=DEVICE,
        script:
            "../scripts/evaluate_open_weights.py"


if recursion_open_weights(config):

    # Each generation fine-tunes the base on its lineage's curriculum; its folder stays, as
    # it translates the lineage's sources for the next generation.
    use rule finetune_open_weights as train_recursion_open_weights with:
        input:
            pairs=f"{RECURSION_RUN_DIR}/curriculum.parquet",
            dev="results/pools/dev.parquet",
        output:
            model=directory(f"{RECURSION_RUN_DIR}/model"),
            summary=f"{RECURSION_RUN_DIR}/train.json",
        log:
            f"logs/recursion/train/{RECURSION_RUN}.log",
        benchmark:
            f"benchmarks/results/train_recursion/{RECURSION_RUN}.tsv"
        wildcard_constraints:
            generation="[0-9]+",
        resources:
            **model_job(
                lambda wildcards: open_weights_footprint.finetuning(
                    SCALE, int(wildcards.size) * (int(wildcards.generation) + 1)
                )
            ),
        params:
            rows=None,
            base=OPEN_WEIGHTS_BASE,
            generator=GENERATORS[OPEN_WEIGHTS_BASE],
            prompts=config.get("prompts"),
            training=lambda wildcards: recursion_training(config, int(wildcards.seed)),
            method=finetune_method(config),
            checkpoint=f"results/checkpoints/recursion/{RECURSION_RUN}/last.pt",
            device=DEVICE,

    rule translate_recursion_open_weights:
        input:
            model=f"{RECURSION_RUN_DIR}/model",
            sources=LINEAGE_HUMAN_PAIRS,
        output:
            f"{RECURSION_RUN_DIR}/synthetic.parquet",
        log:
            f"logs/recursion/translate/{RECURSION_RUN}.log",
        benchmark:
            f"benchmarks/results/translate_recursion/{RECURSION_RUN}.tsv"
        conda:
            ENV
        threads: DECODE_THREADS
        resources:
            **model_job(
                lambda wildcards: open_weights_footprint.generation(
                    SCALE, OPEN_WEIGHTS_BASE, int(wildcards.size)
                )
            ),
        params:
            name="{regime}/{generation}",
            generator=GENERATORS[OPEN_WEIGHTS_BASE],
            prompts=config.get("prompts"),
            device=DEVICE,
        script:
            "../scripts/translate_recursion_open_weights.py"

    use rule evaluate_open_weights_run as evaluate_recursion_open_weights with:
        input:
            model=f"{RECURSION_RUN_DIR}/model",
            summary=f"{RECURSION_RUN_DIR}/train.json",
            test="results/pools/test.parquet",
        output:
            metrics=f"{RECURSION_RUN_DIR}/metrics.json",
            hypotheses=f"{RECURSION_RUN_DIR}/test.hyp.txt",
        log:
            f"logs/recursion/evaluate/{RECURSION_RUN}.log",
        benchmark:
            f"benchmarks/results/evaluate_recursion/{RECURSION_RUN}.tsv"
        wildcard_constraints:
            generation="[0-9]+",

    ruleorder: train_recursion_open_weights > train_recursion
    ruleorder: translate_recursion_open_weights > translate_recursion
    ruleorder: evaluate_recursion_open_weights > evaluate_recursion
