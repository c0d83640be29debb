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
