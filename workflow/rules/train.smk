rule curriculum_real:
    input:
        "results/pools/student.parquet",
    output:
        "results/curricula/{experiment}/real.parquet",
    log:
        "logs/curricula/{experiment}/real.log",
    conda:
        ENV
    params:
        seed=config["seed"],
    script:
        "../../scripts/curriculum_real.py"


rule curriculum_self:
    input:
        student="results/pools/student.parquet",
        synthetic=self_synthetic,
    output:
        "results/curricula/{experiment}/self.parquet",
    log:
        "logs/curricula/{experiment}/self.log",
    conda:
        ENV
    params:
        generator=lambda wc: self_generator(config, wc.experiment),
        seed=config["seed"],
    script:
        "../../scripts/curriculum_generated.py"


rule curriculum_gen:
    input:
        student="results/pools/student.parquet",
        synthetic="results/synthetic/{generator}.parquet",
    output:
        "results/curricula/{experiment}/gen-{generator}.parquet",
    log:
        "logs/curricula/{experiment}/gen-{generator}.log",
    conda:
        ENV
    params:
        generator="{generator}",
        seed=config["seed"],
    script:
        "../../scripts/curriculum_generated.py"


rule curriculum_partial:
    input:
        student="results/pools/student.parquet",
        synthetic="results/synthetic/{generator}.parquet",
    output:
        "results/curricula/{experiment}/partial-{generator}-{percent}.parquet",
    log:
        "logs/curricula/{experiment}/partial-{generator}-{percent}.log",
    conda:
        ENV
    params:
        generator="{generator}",
        percent=lambda wc: int(wc.percent),
        seed=config["seed"],
    script:
        "../../scripts/curriculum_partial.py"


rule train_student:
    input:
        unpack(student_init),
        pairs="results/curricula/{experiment}/{condition}.parquet",
        dev="results/pools/dev.parquet",
        tokenizer="results/tokenizer/spm.model",
    output:
        model="results/runs/{experiment}/{condition}/{size}/{seed}/model.pt",
        summary="results/runs/{experiment}/{condition}/{size}/{seed}/train.json",
    log:
        "logs/train_student/{experiment}/{condition}/{size}/{seed}.log",
    benchmark:
        "benchmarks/results/train_student/{experiment}/{condition}/{size}/{seed}.tsv"
    wildcard_constraints:
        experiment=LOCAL_EXPERIMENTS,
    conda:
        ENV
    threads: TRAIN_THREADS
    resources:
        mem_mb=8000,
        runtime=12 * 60,
        gpu=GPUS,
    params:
        rows=lambda wc: int(wc.size),
        architecture=lambda wc: student_architecture(config, wc.experiment),
        training=student_training,
        checkpoint="results/checkpoints/{experiment}/{condition}/{size}/{seed}/last.pt",
        device=config.get("device", "auto"),
    script:
        "../../scripts/train_model.py"


if FINETUNE_API:

    rule finetune_api:
        input:
            pairs="results/curricula/finetune/{condition}.parquet",
        output:
            "results/runs/finetune/{condition}/{size}/{seed}/model.json",
        log:
            "logs/finetune_api/{condition}/{size}/{seed}.log",
        conda:
            ENV
        resources:
            runtime=24 * 60,
        params:
            base=config["finetune"]["base"],
            generator=config["generators"][config["finetune"]["base"]],
            prompts=config.get("prompts"),
            rows=lambda wc: int(wc.size),
            seed=lambda wc: int(wc.seed),
            # Not an output: Snakemake deletes a failed job's outputs, and these ids are what
            # lets a restart poll the job it paid for instead of paying again.
            state="resources/finetune/{condition}/{size}/{seed}/job.json",
            hyperparameters=config["finetune"]["hyperparameters"],
            poll_seconds=config["finetune"]["poll_seconds"],
        script:
            "../../scripts/finetune_api.py"
