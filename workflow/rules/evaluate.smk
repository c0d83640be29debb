# Every model's test translations and their sacreBLEU scores: students, local and API
# generators, and models fine-tuned through the OpenAI API.


# The API's answers need the network, which cluster nodes often lack.
localrules:
    evaluate_api_generator,


rule evaluate_run:
    input:
        model="results/runs/{experiment}/{condition}/{size}/{seed}/model.pt",
        tokenizer="results/tokenizer/spm.model",
        test="results/pools/test.parquet",
    output:
        metrics="results/runs/{experiment}/{condition}/{size}/{seed}/metrics.json",
        hypotheses="results/runs/{experiment}/{condition}/{size}/{seed}/test.hyp.txt",
    log:
        "logs/evaluate_run/{experiment}/{condition}/{size}/{seed}.log",
    benchmark:
        "benchmarks/results/evaluate_run/{experiment}/{condition}/{size}/{seed}.tsv"
    wildcard_constraints:
        experiment=LOCAL_EXPERIMENTS,
    conda:
        ENV
    threads: DECODE_THREADS
    resources:
        mem_mb=mem_mb_of(student_test_scale),
        runtime=runtime_of(student_test_scale),
        gpu=GPUS,
        gpu_model=GPU_MODEL,
    params:
        decoding=decoding_settings(config),
        labels=run_labels,
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
        mem_mb=mem_mb_of(generator_test_scale),
        runtime=runtime_of(generator_test_scale),
        gpu=GPUS,
        gpu_model=GPU_MODEL,
    params:
        decoding=generator_decoding,
        labels=generator_labels,
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
        generator=API_GENERATORS,
    conda:
        ENV
    params:
        generator=generator_settings,
        prompts=config.get("prompts"),
        labels=generator_labels,
    script:
        "../scripts/evaluate_api_model.py"


if FINETUNE_API:

    localrules:
        evaluate_finetuned_api,

    rule evaluate_finetuned_api:
        input:
            model="results/runs/{experiment}/{condition}/{size}/{seed}/model.json",
            test="results/pools/test.parquet",
        output:
            metrics="results/runs/{experiment}/{condition}/{size}/{seed}/metrics.json",
            hypotheses="results/runs/{experiment}/{condition}/{size}/{seed}/test.hyp.txt",
        log:
            "logs/evaluate_run/{experiment}/{condition}/{size}/{seed}.log",
        benchmark:
            "benchmarks/results/evaluate_finetuned_api/{experiment}/{condition}/{size}/{seed}.tsv"
        wildcard_constraints:
            experiment=FINETUNE,
        conda:
            ENV
        params:
            base=config[FINETUNE]["base"],
            generator=GENERATORS[config[FINETUNE]["base"]],
            prompts=config.get("prompts"),
            labels=run_labels,
        script:
            "../scripts/evaluate_finetuned_api.py"
