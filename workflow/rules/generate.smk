rule train_generator:
    input:
        pairs="results/pools/teacher.parquet",
        dev="results/pools/dev.parquet",
        tokenizer="results/tokenizer/spm.model",
    output:
        model="results/generators/{generator}/model.pt",
        summary="results/generators/{generator}/train.json",
    log:
        "logs/train_generator/{generator}.log",
    benchmark:
        "benchmarks/results/train_generator/{generator}.tsv"
    conda:
        ENV
    threads: TRAIN_THREADS
    resources:
        mem_mb=8000,
        runtime=24 * 60,
        gpu=GPUS,
    params:
        rows=lambda wc: config["generators"][wc.generator].get("teacher_pairs"),
        architecture=generator_architecture,
        training=generator_training,
        checkpoint="results/checkpoints/generators/{generator}/last.pt",
        device=config.get("device", "auto"),
    script:
        "../../scripts/train_model.py"


rule generate_synthetic:
    input:
        unpack(synthetic_inputs),
        pool="results/pools/student.parquet",
    output:
        table="results/synthetic/{generator}.parquet",
        cost="results/synthetic/{generator}.cost.json",
    log:
        "logs/generate_synthetic/{generator}.log",
    benchmark:
        "benchmarks/results/generate_synthetic/{generator}.tsv"
    conda:
        ENV
    threads: DECODE_THREADS
    resources:
        mem_mb=4000,
        runtime=6 * 60,
        gpu=lambda wc: GPUS if is_local(wc.generator) else 0,
    params:
        generator=lambda wc: config["generators"][wc.generator],
        prompts=config.get("prompts"),
        decoding=synthetic_decoding,
        device=config.get("device", "auto"),
        precision=config["training"].get("precision", "auto"),
    script:
        "../../scripts/generate_synthetic.py"


# API generators are scored on the test set through the same cached path that writes their
# synthetic data; local ones by evaluate_generator (evaluate.smk).
ruleorder: evaluate_api_generator > evaluate_generator


rule evaluate_api_generator:
    input:
        test="results/pools/test.parquet",
    output:
        metrics="results/generators/{generator}/metrics.json",
        hypotheses="results/generators/{generator}/test.hyp.txt",
    log:
        "logs/evaluate_generator/{generator}.log",
    wildcard_constraints:
        generator=API_GENERATORS,
    conda:
        ENV
    params:
        generator=lambda wc: config["generators"][wc.generator],
        prompts=config.get("prompts"),
        labels=lambda wc: {
            "generator": wc.generator,
            "architecture": "{backend}:{model}".format(
                **config["generators"][wc.generator]
            ),
        },
    script:
        "../../scripts/evaluate_api.py"
