# Generators: local teachers trained on the teacher pool, and every generator's translations of
# the student pool (API generators answer through their cache).
from regurgitate.study.config import training_settings


rule train_generator:
    input:
        pairs="results/pools/teacher.parquet",
        dev="results/pools/dev.parquet",
        tokenizer="results/tokenizer/spm.model",
        checked=POOLS_CHECKED,
    output:
        model="results/generators/{generator}/model.pt",
        summary="results/generators/{generator}/train.json",
    log:
        "logs/train_generator/{generator}.log",
    benchmark:
        "benchmarks/results/train_generator/{generator}.tsv"
    # Every experiment waits on the generators, the students of `real` on nothing: without a
    # priority the scheduler may fill the cores with those students and start the last
    # generator (the longest, on all teacher pairs) an hour late.
    priority: 1
    conda:
        ENV
    threads: TRAIN_THREADS
    resources:
        **model_job(lambda wildcards: SCALE.generator_training(wildcards.generator)),
    params:
        rows=lambda wildcards: GENERATORS[wildcards.generator].get("teacher_pairs"),
        architecture=lambda wildcards: config["architectures"][
            GENERATORS[wildcards.generator]["architecture"]
        ],
        training=lambda wildcards: training_settings(
            config, GENERATORS[wildcards.generator].get("training")
        ),
        checkpoint="results/checkpoints/generators/{generator}/last.pt",
        device=DEVICE,
    script:
        "../scripts/train_model.py"


rule generate_synthetic:
    input:
        unpack(get_generator_model),
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
        **model_job(
            lambda wildcards: SCALE.generation(wildcards.generator, "student"),
            uses_gpu=runs_a_model,
        ),
    params:
        generator=get_generator,
        prompts=config.get("prompts"),
        # An API generator's decoding settings are part of its generator settings.
        decoding=lambda wildcards: (
            get_generator_decoding(wildcards) if is_local_generator(wildcards) else {}
        ),
        device=DEVICE,
        precision=PRECISION,
    script:
        "../scripts/generate_synthetic.py"
