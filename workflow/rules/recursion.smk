# Recursion: generations of models trained on their predecessors' output (docs/study.md). A run
# is (regime, generation, size, seed) and lives in results/recursion/<regime>/<generation>/
# <size>/<seed>/; generation 0 (regime `real`) trains on human pairs and every regime starts
# from it. A generation's curriculum reads only the earlier generations it trains on
# (study/recursion.py: parents), so Snakemake runs each lineage in order and regimes side by side.


rule curriculum_recursion:
    input:
        unpack(recursion_curriculum_inputs),
    output:
        f"{RECURSION_RUN}/curriculum.parquet",
    log:
        "logs/recursion/curriculum/{regime}/{generation}/{size}/{seed}.log",
    conda:
        ENV
    params:
        parents=recursion_parents,
        seed=run_seed,
        real_share=RECURSION_SETTINGS.get("real_share"),
    script:
        "../scripts/curriculum_recursion.py"


rule train_recursion:
    input:
        unpack(recursion_init),
        pairs=f"{RECURSION_RUN}/curriculum.parquet",
        dev="results/pools/dev.parquet",
        tokenizer="results/tokenizer/spm.model",
    output:
        model=f"{RECURSION_RUN}/model.pt",
        summary=f"{RECURSION_RUN}/train.json",
    log:
        "logs/recursion/train/{regime}/{generation}/{size}/{seed}.log",
    benchmark:
        "benchmarks/results/train_recursion/{regime}/{generation}/{size}/{seed}.tsv"
    conda:
        ENV
    threads: TRAIN_THREADS
    resources:
        mem_mb=mem_mb_of(recursion_training_scale),
        runtime=runtime_of(recursion_training_scale),
        gpu=GPUS,
        gpu_model=GPU_MODEL,
    params:
        rows=None,
        architecture=recursion_architecture(config) if RECURSION_SETTINGS else {},
        training=recursion_training_of,
        checkpoint="results/checkpoints/recursion/{regime}/{generation}/{size}/{seed}/last.pt",
        device=DEVICE,
    script:
        "../scripts/train_model.py"


rule translate_recursion:
    input:
        model=f"{RECURSION_RUN}/model.pt",
        tokenizer="results/tokenizer/spm.model",
        sources=recursion_root,
    output:
        f"{RECURSION_RUN}/synthetic.parquet",
    log:
        "logs/recursion/translate/{regime}/{generation}/{size}/{seed}.log",
    benchmark:
        "benchmarks/results/translate_recursion/{regime}/{generation}/{size}/{seed}.tsv"
    conda:
        ENV
    threads: DECODE_THREADS
    resources:
        mem_mb=mem_mb_of(recursion_decoding_scale),
        runtime=runtime_of(recursion_decoding_scale),
        gpu=GPUS,
        gpu_model=GPU_MODEL,
    params:
        name="{regime}/{generation}",
        decoding=recursion_decoding(),
        device=DEVICE,
        precision=PRECISION,
    script:
        "../scripts/translate_recursion.py"


rule evaluate_recursion:
    input:
        model=f"{RECURSION_RUN}/model.pt",
        tokenizer="results/tokenizer/spm.model",
        test="results/pools/test.parquet",
    output:
        metrics=f"{RECURSION_RUN}/metrics.json",
        hypotheses=f"{RECURSION_RUN}/test.hyp.txt",
    log:
        "logs/recursion/evaluate/{regime}/{generation}/{size}/{seed}.log",
    conda:
        ENV
    threads: DECODE_THREADS
    resources:
        mem_mb=mem_mb_of(recursion_decoding_scale),
        runtime=runtime_of(recursion_decoding_scale),
        gpu=GPUS,
        gpu_model=GPU_MODEL,
    params:
        decoding=recursion_decoding(),
        labels=recursion_labels,
        device=DEVICE,
        precision=PRECISION,
    script:
        "../scripts/evaluate_model.py"


rule recursion_sample_size:
    input:
        human=[f"{root}/curriculum.parquet" for root in RECURSION_ROOTS],
        synthetic=recursion_files("synthetic.parquet"),
    output:
        "results/recursion/sample-size.json",
    log:
        "logs/recursion/sample-size.log",
    conda:
        ENV
    params:
        cap=RECURSION_SETTINGS.get("sample_tokens"),
        keep_punctuation=MECHANISMS["keep_punctuation"],
    script:
        "../scripts/recursion_sample_size.py"


rule measures_recursion:
    input:
        human=recursion_root,
        synthetic=f"{RECURSION_RUN}/synthetic.parquet",
        student="results/pools/student.parquet",
        sample_size="results/recursion/sample-size.json",
    output:
        f"{RECURSION_RUN}/measures.json",
    log:
        "logs/recursion/measures/{regime}/{generation}/{size}/{seed}.log",
    conda:
        ENV
    resources:
        mem_mb=4000,
    params:
        labels=recursion_labels,
        settings=recursion_measure_settings(),
        seed=config["seed"],
        with_human=recursion_with_human,
    script:
        "../scripts/measures_recursion.py"


rule table_recursion:
    input:
        metrics=recursion_files("metrics.json"),
        hypotheses=recursion_files("test.hyp.txt"),
        measures=recursion_files("measures.json"),
        test="results/pools/test.parquet",
    output:
        "results/tables/recursion.csv",
    log:
        "logs/report/table_recursion.log",
    conda:
        ENV
    params:
        seed=config["seed"],
    script:
        "../scripts/table_recursion.py"


rule figure_recursion:
    input:
        "results/tables/recursion.csv",
    output:
        png=report(
            "results/figures/recursion.png",
            caption="../report/recursion_figure.rst",
            category="Recursion",
        ),
        pdf="results/figures/recursion.pdf",
    log:
        "logs/report/figure_recursion.log",
    conda:
        ENV
    params:
        title=RECURSION_TITLE,
    script:
        "../scripts/figure_recursion.py"
