# Curricula of the real, self, gen and partial conditions (one rule per kind), and the students
# trained on them: every condition of every experiment trains through train_student (or, for
# E1 with an OpenAI base, finetune_api).
from regurgitate.study.config import (
    self_generator,
    student_architecture,
    training_settings,
)

# Each run's curriculum and the prefix it trains on.
CURRICULUM_PREFIXES = [
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
# A student's model is read only by its evaluation: temporary unless `keep_student_models`.
STUDENT_MODEL = f"{RUN_DIR}/model.pt"
if not footprint.keeps_student_models(config):
    STUDENT_MODEL = temp(STUDENT_MODEL)


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
        seed=get_run_seed,
    script:
        "../scripts/curriculum_real.py"


rule curriculum_self:
    input:
        student="results/pools/student.parquet",
        synthetic=lambda wildcards: (
            f"results/synthetic/{self_generator(config, wildcards.experiment)}.parquet"
        ),
    output:
        "results/curricula/{experiment}/self/{seed}.parquet",
    log:
        "logs/curricula/{experiment}/self/{seed}.log",
    conda:
        ENV
    params:
        generator=lambda wildcards: self_generator(config, wildcards.experiment),
        seed=get_run_seed,
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
        seed=get_run_seed,
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
        seed=get_run_seed,
    script:
        "../scripts/curriculum_partial.py"


# What each run trains on, in tokens: conditions of one size can differ in text (S1 and S3
# favour some lengths, generated targets are shorter or longer than human ones).
rule table_curricula:
    input:
        sorted({prefix["path"] for prefix in CURRICULUM_PREFIXES}),
    output:
        "results/tables/curricula.csv",
    log:
        "logs/report/table_curricula.log",
    conda:
        ENV
    params:
        prefixes=CURRICULUM_PREFIXES,
    script:
        "../scripts/table_curricula.py"


rule train_student:
    input:
        unpack(lambda wildcards: base_model(wildcards.experiment)),
        pairs=lambda wildcards: curriculum_path(
            wildcards.experiment, wildcards.condition, wildcards.seed
        ),
        dev="results/pools/dev.parquet",
        tokenizer="results/tokenizer/spm.model",
        checked=POOLS_CHECKED,
    output:
        model=STUDENT_MODEL,
        summary=f"{RUN_DIR}/train.json",
    log:
        f"logs/train_student/{RUN}.log",
    benchmark:
        f"benchmarks/results/train_student/{RUN}.tsv"
    wildcard_constraints:
        experiment=LOCAL_EXPERIMENT_PATTERN,
    conda:
        ENV
    threads: TRAIN_THREADS
    resources:
        **model_job(
            lambda wildcards: SCALE.student_training(
                wildcards.experiment, int(wildcards.size)
            )
        ),
    params:
        rows=lambda wildcards: int(wildcards.size),
        architecture=lambda wildcards: student_architecture(
            config, wildcards.experiment
        ),
        training=lambda wildcards: training_settings(
            config,
            config[wildcards.experiment].get("training"),
            {
                "seed": int(wildcards.seed),
                "select": config[wildcards.experiment]["select"],
            },
        ),
        checkpoint=f"results/checkpoints/{RUN}/last.pt",
        device=DEVICE,
    script:
        "../scripts/train_model.py"


if FINETUNE_API:

    # It waits on a remote job and needs the network, which cluster nodes often lack.
    localrules:
        finetune_api,

    rule finetune_api:
        input:
            pairs=lambda wildcards: curriculum_path(
                wildcards.experiment, wildcards.condition, wildcards.seed
            ),
        output:
            f"{RUN_DIR}/model.json",
        log:
            f"logs/finetune_api/{RUN}.log",
        benchmark:
            f"benchmarks/results/finetune_api/{RUN}.tsv"
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
            rows=lambda wildcards: int(wildcards.size),
            seed=get_run_seed,
            # Not an output: Snakemake deletes a failed job's outputs, and these ids are what
            # lets a restart poll the job it paid for instead of paying again.
            state="resources/finetune/{condition}/{size}/{seed}/job.json",
            hyperparameters=config[FINETUNE]["hyperparameters"],
            poll_seconds=config[FINETUNE]["poll_seconds"],
        script:
            "../scripts/finetune_api.py"
