# Every model's test translations and their sacreBLEU scores: students, local and API
# generators, and models fine-tuned through the OpenAI API.
from regurgitate.study.config import generator_labels

# A regex of the openai and anthropic generators' names (one that matches none if there are none).
API_GENERATOR_PATTERN = (
    "|".join(name for name, g in GENERATORS.items() if g["backend"] != "local")
    or "(?!)"
)


rule evaluate_run:
    input:
        model=f"{RUN_DIR}/model.pt",
        tokenizer="results/tokenizer/spm.model",
        test="results/pools/test.parquet",
    output:
        metrics=f"{RUN_DIR}/metrics.json",
        hypotheses=f"{RUN_DIR}/test.hyp.txt",
    log:
        f"logs/evaluate_run/{RUN}.log",
    benchmark:
        f"benchmarks/results/evaluate_run/{RUN}.tsv"
    wildcard_constraints:
        experiment=LOCAL_EXPERIMENT_PATTERN,
    conda:
        ENV
    threads: DECODE_THREADS
    resources:
        **model_job(lambda wildcards: SCALE.student_decoding(wildcards.experiment)),
    params:
        decoding=decoding_settings(config),
        labels=get_run_labels,
        device=DEVICE,
        precision=PRECISION,
    script:
        "../scripts/evaluate_model.py"


rule evaluate_generator:
    input:
        model="results/generators/{generator}/model.pt",
        tokenizer="results/tokenizer/spm.model",
        test="results/pools/test.parquet",
    output:
        metrics="results/generators/{generator}/metrics.json",
        hypotheses="results/generators/{generator}/test.hyp.txt",
    log:
        "logs/evaluate_generator/{generator}.log",
    benchmark:
        "benchmarks/results/evaluate_generator/{generator}.tsv"
    conda:
        ENV
    threads: DECODE_THREADS
    resources:
        **model_job(lambda wildcards: SCALE.generation(wildcards.generator, "test")),
    params:
        decoding=get_generator_decoding,
        labels=lambda wildcards: generator_labels(
            wildcards.generator, GENERATORS[wildcards.generator]
        ),
        device=DEVICE,
        precision=PRECISION,
    script:
        "../scripts/evaluate_model.py"


# API generators are scored on the test set through the same cached path that writes their
# synthetic data.
ruleorder: evaluate_api_generator > evaluate_generator


rule evaluate_api_generator:
    input:
        test="results/pools/test.parquet",
    output:
        metrics="results/generators/{generator}/metrics.json",
        hypotheses="results/generators/{generator}/test.hyp.txt",
    log:
        "logs/evaluate_generator/{generator}.log",
    benchmark:
        "benchmarks/results/evaluate_api_generator/{generator}.tsv"
    wildcard_constraints:
        generator=API_GENERATOR_PATTERN,
    conda:
        ENV
    params:
        generator=get_generator,
        prompts=config.get("prompts"),
        labels=lambda wildcards: generator_labels(
            wildcards.generator, GENERATORS[wildcards.generator]
        ),
    script:
        "../scripts/evaluate_api_model.py"


if FINETUNE_API:

    localrules:
        evaluate_finetuned_api,

    rule evaluate_finetuned_api:
        input:
            model=f"{RUN_DIR}/model.json",
            test="results/pools/test.parquet",
        output:
            metrics=f"{RUN_DIR}/metrics.json",
            hypotheses=f"{RUN_DIR}/test.hyp.txt",
        log:
            f"logs/evaluate_run/{RUN}.log",
        benchmark:
            f"benchmarks/results/evaluate_finetuned_api/{RUN}.tsv"
        wildcard_constraints:
            experiment=FINETUNE,
        conda:
            ENV
        params:
            base=config[FINETUNE]["base"],
            generator=GENERATORS[config[FINETUNE]["base"]],
            prompts=config.get("prompts"),
            labels=get_run_labels,
        script:
            "../scripts/evaluate_finetuned_api.py"
