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
    wildcard_constraints:
        experiment=LOCAL_EXPERIMENTS,
    conda:
        ENV
    threads: DECODE_THREADS
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=GPUS,
    params:
        decoding=decoding_settings(config),
        labels=lambda wc: {
            "experiment": wc.experiment,
            "condition": wc.condition,
            "size": int(wc.size),
            "seed": int(wc.seed),
        },
        device=config.get("device", "auto"),
        precision=config["training"].get("precision", "auto"),
    script:
        "../../scripts/evaluate.py"


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
    conda:
        ENV
    threads: DECODE_THREADS
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=GPUS,
    params:
        decoding=generator_decoding,
        labels=lambda wc: {
            "generator": wc.generator,
            "architecture": config["generators"][wc.generator]["architecture"],
            "teacher_pairs": config["generators"][wc.generator].get("teacher_pairs"),
        },
        device=config.get("device", "auto"),
        precision=config["training"].get("precision", "auto"),
    script:
        "../../scripts/evaluate.py"


if FINETUNE_API:

    rule evaluate_finetuned_api:
        input:
            model="results/runs/finetune/{condition}/{size}/{seed}/model.json",
            test="results/pools/test.parquet",
        output:
            metrics="results/runs/finetune/{condition}/{size}/{seed}/metrics.json",
            hypotheses="results/runs/finetune/{condition}/{size}/{seed}/test.hyp.txt",
        log:
            "logs/evaluate_run/finetune/{condition}/{size}/{seed}.log",
        conda:
            ENV
        params:
            base=config["finetune"]["base"],
            generator=config["generators"][config["finetune"]["base"]],
            prompts=config.get("prompts"),
            labels=lambda wc: {
                "experiment": "finetune",
                "condition": wc.condition,
                "size": int(wc.size),
                "seed": int(wc.seed),
            },
        script:
            "../../scripts/evaluate_finetuned_api.py"
