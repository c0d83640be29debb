# Curricula of the real, self, gen and partial conditions (one rule per kind), and the students
# trained on them: every condition of every experiment trains through train_student (or, for
# E1 with an OpenAI base, finetune_api).


# Curricula take seconds.
localrules:
    curriculum_real,
    curriculum_self,
    curriculum_gen,
    curriculum_partial,


rule curriculum_real:
    input:
        "results/pools/student.parquet",
    output:
        "results/curricula/real/{seed}.parquet",
    log:
        "logs/curricula/real/{seed}.log",
    conda:
        ENV
    params:
        seed=run_seed,
    script:
        "../scripts/curriculum_real.py"


rule curriculum_self:
    input:
        student="results/pools/student.parquet",
        synthetic=self_synthetic,
    output:
        "results/curricula/{experiment}/self/{seed}.parquet",
    log:
        "logs/curricula/{experiment}/self/{seed}.log",
    conda:
        ENV
    params:
        generator=self_generator_name,
        seed=run_seed,
    script:
        "../scripts/curriculum_generated.py"


rule curriculum_gen:
    input:
        student="results/pools/student.parquet",
        synthetic="results/synthetic/{generator}.parquet",
    output:
        "results/curricula/gen-{generator}/{seed}.parquet",
    log:
        "logs/curricula/gen-{generator}/{seed}.log",
    conda:
        ENV
    params:
        generator="{generator}",
        seed=run_seed,
    script:
        "../scripts/curriculum_generated.py"


rule curriculum_partial:
    input:
        student="results/pools/student.parquet",
        synthetic="results/synthetic/{generator}.parquet",
    output:
        "results/curricula/partial-{generator}-{percent}/{seed}.parquet",
    log:
        "logs/curricula/partial-{generator}-{percent}/{seed}.log",
    conda:
        ENV
    params:
        seed=run_seed,
    script:
        "../scripts/curriculum_partial.py"


# What each run trains on, in tokens: conditions of one size can differ in text (S1 and S3
# favour some lengths, generated targets are shorter or longer than human ones).
rule table_curricula:
    input:
        curriculum_files,
    output:
        "results/tables/curricula.csv",
    log:
        "logs/report/table_curricula.log",
    conda:
        ENV
    params:
        prefixes=curriculum_prefixes(),
    script:
        "../scripts/table_curricula.py"


rule train_student:
    input:
        unpack(student_init),
        pairs=curriculum,
        dev="results/pools/dev.parquet",
        tokenizer="results/tokenizer/spm.model",
    output:
        model=student_model(
            "results/runs/{experiment}/{condition}/{size}/{seed}/model.pt"
        ),
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
        mem_mb=mem_mb_of(student_training_scale),
        runtime=runtime_of(student_training_scale),
        gpu=GPUS,
        gpu_model=GPU_MODEL,
    params:
        rows=student_rows,
        architecture=student_architecture_of,
        training=student_training,
        checkpoint="results/checkpoints/{experiment}/{condition}/{size}/{seed}/last.pt",
        device=DEVICE,
    script:
        "../scripts/train_model.py"


if FINETUNE_API:

    # It waits on a remote job and needs the network, which cluster nodes often lack.
    localrules:
        finetune_api,

    rule finetune_api:
        input:
            pairs=curriculum,
        output:
            "results/runs/{experiment}/{condition}/{size}/{seed}/model.json",
        log:
            "logs/finetune_api/{experiment}/{condition}/{size}/{seed}.log",
        benchmark:
            "benchmarks/results/finetune_api/{experiment}/{condition}/{size}/{seed}.tsv"
        wildcard_constraints:
            experiment=FINETUNE,
        conda:
            ENV
        resources:
            runtime=24 * 60,
        params:
            base=config[FINETUNE]["base"],
            generator=GENERATORS[config[FINETUNE]["base"]],
            prompts=config.get("prompts"),
            rows=student_rows,
            seed=run_seed,
            # Not an output: Snakemake deletes a failed job's outputs, and these ids are what
            # lets a restart poll the job it paid for instead of paying again.
            state="resources/finetune/{condition}/{size}/{seed}/job.json",
            hyperparameters=config[FINETUNE]["hyperparameters"],
            poll_seconds=config[FINETUNE]["poll_seconds"],
        script:
            "../scripts/finetune_api.py"
