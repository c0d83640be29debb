# Recursion: generations of models trained on their predecessors' output (docs/study.md). A run
# is (regime, generation, size, seed) and lives in results/recursion/<regime>/<generation>/
# <size>/<seed>/; generation 0 (regime `real`) trains on human pairs and every regime starts
# from it. A generation's curriculum reads only the earlier generations it trains on
# (study/recursion.py: parents), so Snakemake runs each lineage in order and regimes side by side.

from regurgitate.study.config import (
    recursion_architecture,
    recursion_runs,
    recursion_training,
)
from regurgitate.study.recursion import parents
from regurgitate.study.vocabulary import (
    RECURSION,
    RECURSION_ROOT,
    RECURSION_TITLE,
    REAL,
)

RECURSION_SETTINGS = config.get(RECURSION, {})
RECURSION_RUN = "results/recursion/{regime}/{generation}/{size}/{seed}"


def recursion_dir(regime, generation, size, seed):
    """The folder of one run; generation 0 of every regime is the `real` one."""
    regime = RECURSION_ROOT if int(generation) == 0 else regime
    return RECURSION_RUN.format(regime=regime, generation=generation, size=size, seed=seed)


RECURSION_RUN_DIRS = [recursion_dir(*run) for run in recursion_runs(config)]
RECURSION_ROOTS = [
    recursion_dir(RECURSION_ROOT, 0, size, seed)
    for size in RECURSION_SETTINGS.get("sizes", [])
    for seed in RECURSION_SETTINGS.get("seeds", [])
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


def recursion_root(wildcards):
    """Generation 0's curriculum of the run's lineage: its sources and their human targets."""
    root = recursion_dir(RECURSION_ROOT, 0, wildcards.size, wildcards.seed)
    return f"{root}/curriculum.parquet"


def recursion_parents(wildcards):
    return parents(wildcards.regime, int(wildcards.generation))


def recursion_curriculum_inputs(wildcards):
    """Generation 0 takes the `real` curriculum of its seed; generation n the lineage's human
    pairs and the translations of the generations it trains on."""
    generation_parents = recursion_parents(wildcards)
    if int(wildcards.generation) == 0:
        seed = curriculum_seed(wildcards.seed)
        return {"real": f"results/curricula/{REAL}/{seed}.parquet"}
    return {
        "human": recursion_root(wildcards),
        "translations": [
            recursion_dir(wildcards.regime, g, wildcards.size, wildcards.seed)
            + "/synthetic.parquet"
            for g in generation_parents
        ],
    }


def recursion_init(wildcards):
    """Fine-tuned generations start from the base model, each afresh."""
    if RECURSION_SETTINGS["experiment"] == FINETUNE:
        return {"init": f"results/generators/{config[FINETUNE]['base']}/model.pt"}
    return {}


def recursion_training_of(wildcards):
    return recursion_training(config, int(wildcards.seed))


def recursion_decoding():
    return decoding_settings(config, RECURSION_SETTINGS.get("decoding"))


def recursion_labels(wildcards):
    """What a generation's metrics and measures say about its run."""
    return {
        "regime": wildcards.regime,
        "generation": int(wildcards.generation),
        "size": int(wildcards.size),
        "seed": int(wildcards.seed),
    }


def recursion_files(name):
    return [f"{run}/{name}" for run in RECURSION_RUN_DIRS]


def recursion_measure_settings():
    return {
        **{key: MECHANISMS[key] for key in ("chrf_threshold", "bootstrap", "keep_punctuation")},
        "tail_max_count": RECURSION_SETTINGS.get("tail_max_count"),
    }


def recursion_with_human(wildcards):
    return int(wildcards.generation) == 0


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
        "../../scripts/curriculum_recursion.py"


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
        mem_mb=8000,
        runtime=12 * 60,
        gpu=GPUS,
    params:
        rows=None,
        architecture=recursion_architecture(config) if RECURSION_SETTINGS else {},
        training=recursion_training_of,
        checkpoint="results/checkpoints/recursion/{regime}/{generation}/{size}/{seed}/last.pt",
        device=DEVICE,
    script:
        "../../scripts/train_model.py"


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
        mem_mb=4000,
        runtime=60,
        gpu=GPUS,
    params:
        name="{regime}/{generation}",
        decoding=recursion_decoding(),
        device=DEVICE,
        precision=PRECISION,
    script:
        "../../scripts/translate_recursion.py"


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
        mem_mb=4000,
        runtime=60,
        gpu=GPUS,
    params:
        decoding=recursion_decoding(),
        labels=recursion_labels,
        device=DEVICE,
        precision=PRECISION,
    script:
        "../../scripts/evaluate_model.py"


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
        "../../scripts/recursion_sample_size.py"


rule measures_recursion:
    input:
        human=recursion_root,
        synthetic=f"{RECURSION_RUN}/synthetic.parquet",
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
        "../../scripts/measures_recursion.py"


rule table_recursion:
    input:
        metrics=recursion_files("metrics.json"),
        hypotheses=recursion_files("test.hyp.txt"),
        measures=recursion_files("measures.json"),
        test="results/pools/test.parquet",
    output:
        report(
            "results/tables/recursion.csv",
            caption="../report/recursion_table.rst",
            category="Recursion",
        ),
    log:
        "logs/report/table_recursion.log",
    conda:
        ENV
    params:
        seed=config["seed"],
    script:
        "../../scripts/table_recursion.py"


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
        "../../scripts/figure_recursion.py"
