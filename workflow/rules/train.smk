rule curriculum_real:
    input:
        "results/pools/student.parquet",
    output:
        "results/curricula/scratch/real.parquet",
    log:
        "logs/curricula/scratch/real.log",
    conda:
        ENV
    params:
        seed=config["seed"],
    script:
        "../../scripts/curriculum_real.py"


rule curriculum_self:
    input:
        student="results/pools/student.parquet",
        synthetic=f"results/synthetic/{SCRATCH['self_generator']}.parquet",
    output:
        "results/curricula/scratch/self.parquet",
    log:
        "logs/curricula/scratch/self.log",
    conda:
        ENV
    params:
        generator=SCRATCH["self_generator"],
        seed=config["seed"],
    script:
        "../../scripts/curriculum_generated.py"


rule curriculum_gen:
    input:
        student="results/pools/student.parquet",
        synthetic="results/synthetic/{generator}.parquet",
    output:
        "results/curricula/scratch/gen-{generator}.parquet",
    log:
        "logs/curricula/scratch/gen-{generator}.log",
    conda:
        ENV
    params:
        generator="{generator}",
        seed=config["seed"],
    script:
        "../../scripts/curriculum_generated.py"


rule train_student:
    input:
        pairs="results/curricula/scratch/{condition}.parquet",
        dev="results/pools/dev.parquet",
        tokenizer="results/tokenizer/spm.model",
    output:
        model="results/runs/scratch/{condition}/{size}/{seed}/model.pt",
        summary="results/runs/scratch/{condition}/{size}/{seed}/train.json",
    log:
        "logs/train_student/scratch/{condition}/{size}/{seed}.log",
    benchmark:
        "benchmarks/results/train_student/scratch/{condition}/{size}/{seed}.tsv"
    conda:
        ENV
    threads: TRAIN_THREADS
    resources:
        mem_mb=8000,
        runtime=12 * 60,
        gpu=GPUS,
    params:
        rows=lambda wc: int(wc.size),
        architecture=config["architectures"][SCRATCH["architecture"]],
        training=lambda wc: training_settings(
            config, SCRATCH.get("training"), {"seed": int(wc.seed)}
        ),
        checkpoint="results/checkpoints/scratch/{condition}/{size}/{seed}/last.pt",
        device=config.get("device", "auto"),
    script:
        "../../scripts/train_model.py"
