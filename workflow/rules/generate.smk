# Generators: local teachers trained on the teacher pool, and every generator's translations of
# the student pool (API generators answer through their cache).


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
        mem_mb=mem_mb_of(generator_training_scale),
        runtime=runtime_of(generator_training_scale),
        gpu=GPUS,
        gpu_model=GPU_MODEL,
    params:
        rows=generator_teacher_pairs,
        architecture=generator_architecture,
        training=generator_training,
        checkpoint="results/checkpoints/generators/{generator}/last.pt",
        device=DEVICE,
    script:
        "../scripts/train_model.py"


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
        mem_mb=mem_mb_of(synthetic_scale),
        runtime=runtime_of(synthetic_scale),
        gpu=generator_gpus,
        gpu_model=generator_gpu_model,
    params:
        generator=generator_settings,
        prompts=config.get("prompts"),
        decoding=synthetic_decoding,
        device=DEVICE,
        precision=PRECISION,
    script:
        "../scripts/generate_synthetic.py"
