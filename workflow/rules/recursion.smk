# Recursion: generations of models trained on their predecessors' output (docs/study.md). A run
# is (regime, generation, size, seed) and lives in results/recursion/<regime>/<generation>/
# <size>/<seed>/; generation 0 (regime `real`) trains on human pairs and every regime starts
# from it. A generation's curriculum reads only the earlier generations it trains on
# (study/recursion.py: parents), so Snakemake runs each lineage in order and regimes side by side.
# A generation trains and is scored by the student rules (train.smk, evaluate.smk).
from regurgitate.study.config import (
    recursion_architecture,
    recursion_runs,
    recursion_training,
)
from regurgitate.study.recursion import parents
from regurgitate.study.vocabulary import (
    GENERATION_ZERO_REGIME,
    REAL,
    RECURSION,
    RECURSION_TITLE,
)

RECURSION_SETTINGS = config.get(RECURSION, {})
# The experiment whose students the generations are: their architecture, base model and scale.
RECURSION_EXPERIMENT = RECURSION_SETTINGS.get("experiment")
RECURSION_DECODING = decoding_settings(config, RECURSION_SETTINGS.get("decoding"))
# A generation's run: its id (in results, logs, benchmarks and checkpoints) and its folder.
RECURSION_RUN = "{regime}/{generation}/{size}/{seed}"
RECURSION_RUN_DIR = f"results/recursion/{RECURSION_RUN}"
# Generation 0's curriculum of a lineage (size, seed): its sources and human targets.
LINEAGE_HUMAN_PAIRS = (
    f"results/recursion/{GENERATION_ZERO_REGIME}/0/{{size}}/{{seed}}/curriculum.parquet"
)
RECURSION_RUN_DIRS = [
    RECURSION_RUN_DIR.format(regime=regime, generation=generation, size=size, seed=seed)
    for regime, generation, size, seed in recursion_runs(config)
]
RECURSION_TARGETS = (
    [
        "results/tables/recursion.csv",
        "results/figures/recursion.png",
        "results/figures/recursion.pdf",
    ]
    if RECURSION_SETTINGS
    else []
)


rule curriculum_recursion:
    # Generation 0 takes the `real` curriculum of its seed; generation n the lineage's human
    # pairs and the translations of the generations it trains on (generation 0's in `real`).
    input:
        real=lambda wildcards: (
            curriculum_path(None, REAL, wildcards.seed)
            if wildcards.generation == "0"
            else []
        ),
        human=lambda wildcards: (
            []
            if wildcards.generation == "0"
            else LINEAGE_HUMAN_PAIRS.format(size=wildcards.size, seed=wildcards.seed)
        ),
        translations=lambda wildcards: [
            f"{RECURSION_RUN_DIR}/synthetic.parquet".format(
                regime=wildcards.regime if generation else GENERATION_ZERO_REGIME,
                generation=generation,
                size=wildcards.size,
                seed=wildcards.seed,
            )
            for generation in parents(wildcards.regime, int(wildcards.generation))
        ],
    output:
        f"{RECURSION_RUN_DIR}/curriculum.parquet",
    log:
        f"logs/recursion/curriculum/{RECURSION_RUN}.log",
    conda:
        ENV
    params:
        parents=lambda wildcards: parents(wildcards.regime, int(wildcards.generation)),
        seed=get_run_seed,
        real_share=RECURSION_SETTINGS.get("real_share"),
    script:
        "../scripts/curriculum_recursion.py"


use rule train_student as train_recursion with:
    input:
        **base_model(RECURSION_EXPERIMENT),
        pairs=f"{RECURSION_RUN_DIR}/curriculum.parquet",
        dev="results/pools/dev.parquet",
        tokenizer="results/tokenizer/spm.model",
        checked=POOLS_CHECKED,
    output:
        model=f"{RECURSION_RUN_DIR}/model.pt",
        summary=f"{RECURSION_RUN_DIR}/train.json",
    log:
        f"logs/recursion/train/{RECURSION_RUN}.log",
    benchmark:
        f"benchmarks/results/train_recursion/{RECURSION_RUN}.tsv"
    resources:
        **model_job(
            lambda wildcards: SCALE.recursion_training(
                wildcards.regime, int(wildcards.generation), int(wildcards.size)
            )
        ),
    params:
        rows=None,
        # (an open-weight base has none: rules/open_weights.smk trains its generations)
        architecture=(
            recursion_architecture(config)
            if RECURSION_SETTINGS and not FINETUNE_OPEN_WEIGHTS
            else {}
        ),
        training=lambda wildcards: recursion_training(config, int(wildcards.seed)),
        checkpoint=f"results/checkpoints/recursion/{RECURSION_RUN}/last.pt",


rule translate_recursion:
    input:
        model=f"{RECURSION_RUN_DIR}/model.pt",
        tokenizer="results/tokenizer/spm.model",
        sources=LINEAGE_HUMAN_PAIRS,
    output:
        f"{RECURSION_RUN_DIR}/synthetic.parquet",
    log:
        f"logs/recursion/translate/{RECURSION_RUN}.log",
    benchmark:
        f"benchmarks/results/translate_recursion/{RECURSION_RUN}.tsv"
    conda:
        ENV
    threads: DECODE_THREADS
    resources:
        **model_job(lambda wildcards: SCALE.recursion_decoding(int(wildcards.size))),
    params:
        name="{regime}/{generation}",
        decoding=RECURSION_DECODING,
        device=DEVICE,
        precision=PRECISION,
    script:
        "../scripts/translate_recursion.py"


use rule evaluate_run as evaluate_recursion with:
    input:
        model=f"{RECURSION_RUN_DIR}/model.pt",
        tokenizer="results/tokenizer/spm.model",
        test="results/pools/test.parquet",
    output:
        metrics=f"{RECURSION_RUN_DIR}/metrics.json",
        hypotheses=f"{RECURSION_RUN_DIR}/test.hyp.txt",
    log:
        f"logs/recursion/evaluate/{RECURSION_RUN}.log",
    benchmark:
        f"benchmarks/results/evaluate_recursion/{RECURSION_RUN}.tsv"
    resources:
        **model_job(lambda wildcards: SCALE.recursion_decoding(SCALE.rows("test"))),
    params:
        decoding=RECURSION_DECODING,


rule recursion_sample_size:
    input:
        human=expand(
            LINEAGE_HUMAN_PAIRS,
            size=RECURSION_SETTINGS.get("sizes", []),
            seed=RECURSION_SETTINGS.get("seeds", []),
        ),
        synthetic=[f"{run}/synthetic.parquet" for run in RECURSION_RUN_DIRS],
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
        human=LINEAGE_HUMAN_PAIRS,
        synthetic=f"{RECURSION_RUN_DIR}/synthetic.parquet",
        student="results/pools/student.parquet",
        sample_size="results/recursion/sample-size.json",
    output:
        f"{RECURSION_RUN_DIR}/measures.json",
    log:
        f"logs/recursion/measures/{RECURSION_RUN}.log",
    conda:
        ENV
    resources:
        mem_mb=4000,
    params:
        labels=get_run_labels,
        settings={
            **{
                key: MECHANISMS[key]
                for key in ("chrf_threshold", "bootstrap", "keep_punctuation")
            },
            "tail_max_count": RECURSION_SETTINGS.get("tail_max_count"),
        },
        seed=config["seed"],
        with_human=lambda wildcards: int(wildcards.generation) == 0,
    script:
        "../scripts/measures_recursion.py"


rule table_recursion:
    input:
        metrics=[f"{run}/metrics.json" for run in RECURSION_RUN_DIRS],
        hypotheses=[f"{run}/test.hyp.txt" for run in RECURSION_RUN_DIRS],
        measures=[f"{run}/measures.json" for run in RECURSION_RUN_DIRS],
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
