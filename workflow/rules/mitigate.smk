# The mitigations: S1 quality-ordered, S2 mixed and S3 detector-ranked curricula, what each
# needs, and their tables and figures. Mitigated conditions train and evaluate through the shared
# rules of train.smk and evaluate.smk.
from regurgitate.analysis.mitigations import mitigation_of
from regurgitate.study.config import (
    full_set_conditions,
    mitigation_conditions,
    training_settings,
)
from regurgitate.study.vocabulary import STRATEGIES

MITIGATIONS = config.get("mitigations", {})
MITIGATED_EXPERIMENTS = MITIGATIONS.get("experiments", [])
# The generators S1 orders and S3 ranks, and the quality metrics S1 orders them by.
MITIGATED_GENERATORS = MITIGATIONS.get("generators", [])
QUALITY_METRICS = MITIGATIONS.get("metrics", [])
# The strategies (S1, S2, S3) of the configured mitigated conditions (the sources- controls
# belong to none).
MITIGATION_STRATEGIES = sorted(
    {
        mitigation.strategy
        for experiment in EXPERIMENTS
        for condition in mitigation_conditions(config, experiment)
        if (mitigation := mitigation_of(condition))
    }
)
# The mitigations' tables that this configuration makes: every strategy adds to mitigations.csv;
# S1 also makes quality.csv and S3 detector.csv.
MITIGATION_TABLES = (
    [
        "mitigations",
        *[STRATEGIES[s].table for s in MITIGATION_STRATEGIES if STRATEGIES[s].table],
    ]
    if MITIGATION_STRATEGIES
    else []
)
MITIGATION_CURVES = {
    e: {
        s: {ext: f"results/figures/mitigations/{e}-{s}.{ext}" for ext in ("png", "pdf")}
        for s in MITIGATION_STRATEGIES
    }
    for e in MITIGATED_EXPERIMENTS
}
# Per mitigated experiment, each generator's unmitigated condition (`self` or gen-<g>).
UNMITIGATED_CONDITIONS = {
    e: full_set_conditions(config, e) for e in MITIGATED_EXPERIMENTS
}


# Dual cross-entropy scores a pair forward with `mitigations.forward_scorer`'s model and
# backward with the reverse model.
NLL_MODELS = {
    "forward": f"results/generators/{MITIGATIONS.get('forward_scorer')}/model.pt",
    "reverse": "results/reverse/model.pt",
}
MITIGATED_RUN_METRICS = [path for e in MITIGATED_EXPERIMENTS for path in run_metrics(e)]


# Reshaping tables, curricula, tables and figures take seconds.
localrules:
    reverse_pairs,
    reverse_synthetic,
    curriculum_ordered,
    table_quality,
    curriculum_mixed,
    curriculum_detector,
    table_detector,
    table_mitigations,
    figure_mitigations,


# --- S1: quality-ordered ----------------------------------------------------------------------
# A reverse (English to German) model trained on the teacher pool back-translates each pair
# (round trip) and scores it backwards (dual cross-entropy); quality_scores puts every metric of
# a generator's pairs into one table, and curriculum_ordered sorts the pairs by one metric.


rule reverse_pairs:
    input:
        "results/pools/{pool}.parquet",
    output:
        "results/reverse/{pool}.parquet",
    log:
        "logs/reverse_pairs/{pool}.log",
    wildcard_constraints:
        pool="teacher|dev",
    conda:
        ENV
    script:
        "../scripts/reverse_pairs.py"


use rule reverse_pairs as reverse_synthetic with:
    input:
        "results/synthetic/{generator}.parquet",
    output:
        "results/quality/reversed/{generator}.parquet",
    log:
        "logs/reverse_synthetic/{generator}.log",


use rule train_generator as train_reverse with:
    input:
        pairs="results/reverse/teacher.parquet",
        dev="results/reverse/dev.parquet",
        tokenizer="results/tokenizer/spm.model",
        checked=POOLS_CHECKED,
    output:
        model="results/reverse/model.pt",
        summary="results/reverse/train.json",
    log:
        "logs/train_reverse.log",
    benchmark:
        "benchmarks/results/train_reverse/reverse.tsv"
    resources:
        **model_job(lambda wildcards: SCALE.reverse_training()),
    params:
        rows=None,
        architecture=lambda wildcards: config["architectures"][
            MITIGATIONS["reverse_architecture"]
        ],
        training=lambda wildcards: training_settings(
            config, MITIGATIONS.get("reverse_training")
        ),
        checkpoint="results/checkpoints/reverse/last.pt",


rule back_translate:
    input:
        model="results/reverse/model.pt",
        tokenizer="results/tokenizer/spm.model",
        pool="results/quality/reversed/{generator}.parquet",
    output:
        "results/quality/backtranslation/{generator}.parquet",
    log:
        "logs/back_translate/{generator}.log",
    benchmark:
        "benchmarks/results/back_translate/{generator}.tsv"
    conda:
        ENV
    threads: DECODE_THREADS
    resources:
        **model_job(lambda wildcards: SCALE.back_translation()),
    params:
        decoding=decoding_settings(config),
        device=DEVICE,
        precision=PRECISION,
    script:
        "../scripts/back_translate.py"


rule pair_nll:
    input:
        model=lambda wildcards: NLL_MODELS[wildcards.direction],
        tokenizer="results/tokenizer/spm.model",
        pairs="results/synthetic/{generator}.parquet",
    output:
        "results/quality/nll/{direction}/{generator}.parquet",
    log:
        "logs/pair_nll/{direction}/{generator}.log",
    benchmark:
        "benchmarks/results/pair_nll/{direction}/{generator}.tsv"
    wildcard_constraints:
        direction="forward|reverse",
    conda:
        ENV
    threads: DECODE_THREADS
    resources:
        **model_job(lambda wildcards: SCALE.pair_scoring(wildcards.direction)),
    params:
        device=DEVICE,
        precision=PRECISION,
    script:
        "../scripts/pair_nll.py"


rule quality_scores:
    input:
        student="results/pools/student.parquet",
        synthetic="results/synthetic/{generator}.parquet",
        # What the configured metrics need: the other generators' translations (consensus),
        # back-translations (round trip) and both directions' NLL (dual cross-entropy).
        others=lambda wildcards: (
            [
                f"results/synthetic/{other}.parquet"
                for other in GENERATORS
                if other != wildcards.generator
            ]
            if "consensus" in QUALITY_METRICS
            else []
        ),
        back_translations=(
            "results/quality/backtranslation/{generator}.parquet"
            if "round_trip" in QUALITY_METRICS
            else []
        ),
        forward_nll=(
            "results/quality/nll/forward/{generator}.parquet"
            if "dual_cross_entropy" in QUALITY_METRICS
            else []
        ),
        reverse_nll=(
            "results/quality/nll/reverse/{generator}.parquet"
            if "dual_cross_entropy" in QUALITY_METRICS
            else []
        ),
    output:
        scores="results/quality/{generator}.parquet",
        correlation="results/quality/{generator}.correlation.csv",
    log:
        "logs/quality_scores/{generator}.log",
    benchmark:
        "benchmarks/results/quality_scores/{generator}.tsv"
    conda:
        ENV
    params:
        metrics=QUALITY_METRICS,
    script:
        "../scripts/quality_scores.py"


rule curriculum_ordered:
    input:
        student="results/pools/student.parquet",
        synthetic="results/synthetic/{generator}.parquet",
        scores="results/quality/{generator}.parquet",
    output:
        "results/curricula/ordered-{generator}-{metric}/{seed}.parquet",
    log:
        "logs/curricula/ordered-{generator}-{metric}/{seed}.log",
    conda:
        ENV
    params:
        seed=get_run_seed,
    script:
        "../scripts/curriculum_ordered.py"


rule table_quality:
    input:
        expand(
            "results/quality/{generator}.correlation.csv",
            generator=MITIGATED_GENERATORS,
        ),
    output:
        "results/tables/quality.csv",
    log:
        "logs/report/table_quality.log",
    conda:
        ENV
    script:
        "../scripts/table_quality.py"


# --- S2: mixed generators ---------------------------------------------------------------------


rule curriculum_mixed:
    input:
        unpack(
            lambda wildcards: {
                g: f"results/synthetic/{g}.parquet" for g in wildcards.mix.split("+")
            }
        ),
        student="results/pools/student.parquet",
    output:
        "results/curricula/mixed-{mix}/{seed}.parquet",
    log:
        "logs/curricula/mixed-{mix}/{seed}.log",
    conda:
        ENV
    params:
        generators=lambda wildcards: wildcards.mix.split("+"),
        seed=get_run_seed,
    script:
        "../scripts/curriculum_mixed.py"


# A mix's lexical diversity, measured like every source's: its curriculum stands in for a
# generator's synthetic data.
use rule mechanisms_source as mixed_mechanisms with:
    input:
        student="results/pools/student.parquet",
        synthetic=lambda wildcards: MEASURED_SOURCES[f"mixed-{wildcards.mix}"],
        sample_size="results/mechanisms/sample-size.json",
    output:
        "results/mechanisms/mixed-{mix}.json",
    log:
        "logs/mechanisms/mixed-{mix}.log",
    benchmark:
        "benchmarks/results/mechanisms_source/mixed-{mix}.tsv"
    params:
        name="mixed-{mix}",


# --- S3: detector-ranked ----------------------------------------------------------------------
# Each generator translates the detector pool; a classifier learns human from generated targets
# there and ranks the generator's student-pool pairs by P(human).


use rule generate_synthetic as generate_detector_pool with:
    input:
        unpack(get_generator_model),
        pool="results/pools/detector.parquet",
    output:
        table="results/synthetic/detector/{generator}.parquet",
        cost="results/synthetic/detector/{generator}.cost.json",
    log:
        "logs/generate_synthetic/detector/{generator}.log",
    benchmark:
        "benchmarks/results/generate_detector_pool/{generator}.tsv"
    resources:
        **model_job(
            lambda wildcards: SCALE.generation(wildcards.generator, "detector"),
            uses_gpu=runs_a_model,
        ),


rule train_detector:
    input:
        pool="results/pools/detector.parquet",
        synthetic="results/synthetic/detector/{generator}.parquet",
    output:
        model="results/detector/{generator}/detector.joblib",
        metrics="results/detector/{generator}/metrics.json",
    log:
        "logs/train_detector/{generator}.log",
    benchmark:
        "benchmarks/results/train_detector/{generator}.tsv"
    conda:
        ENV
    params:
        held_out=MITIGATIONS.get("detector_held_out"),
        regularisation=MITIGATIONS.get("detector_regularisation"),
        seed=config["seed"],
    script:
        "../scripts/train_detector.py"


rule detector_scores:
    input:
        detector="results/detector/{generator}/detector.joblib",
        synthetic="results/synthetic/{generator}.parquet",
    output:
        "results/detector/{generator}/p_human.parquet",
    log:
        "logs/detector_scores/{generator}.log",
    benchmark:
        "benchmarks/results/detector_scores/{generator}.tsv"
    conda:
        ENV
    script:
        "../scripts/detector_scores.py"


rule curriculum_detector:
    input:
        student="results/pools/student.parquet",
        synthetic="results/synthetic/{generator}.parquet",
        p_human="results/detector/{generator}/p_human.parquet",
    output:
        "results/curricula/detector-{generator}/{seed}.parquet",
    log:
        "logs/curricula/detector-{generator}/{seed}.log",
    conda:
        ENV
    params:
        seed=get_run_seed,
    script:
        "../scripts/curriculum_detector.py"


rule table_detector:
    input:
        expand(
            "results/detector/{generator}/metrics.json", generator=MITIGATED_GENERATORS
        ),
    output:
        "results/tables/detector.csv",
    log:
        "logs/report/table_detector.log",
    conda:
        ENV
    script:
        "../scripts/table_detector.py"


# --- S1 and S3: the source-selection controls -------------------------------------------------
# Below the pool's size, S1 and S3 choose which sources to train on as well as which targets;
# sources-<c> trains on the same sources in the same order with the human targets.


rule curriculum_sources:
    input:
        student="results/pools/student.parquet",
        selecting="results/curricula/{selecting}/{seed}.parquet",
    output:
        "results/curricula/sources-{selecting}/{seed}.parquet",
    log:
        "logs/curricula/sources-{selecting}/{seed}.log",
    conda:
        ENV
    script:
        "../scripts/curriculum_sources.py"


# --- every strategy: the share of the gap closed ----------------------------------------------


rule table_mitigations:
    input:
        runs=MITIGATED_RUN_METRICS,
        mixes=expand("results/mechanisms/mixed-{mix}.json", mix=MIXES),
        experiment_tables=expand(
            "results/tables/{experiment}.csv", experiment=MITIGATED_EXPERIMENTS
        ),
        generators="results/tables/generators.csv",
    output:
        "results/tables/mitigations.csv",
    log:
        "logs/report/table_mitigations.log",
    conda:
        ENV
    params:
        unmitigated=UNMITIGATED_CONDITIONS,
        min_gap=MITIGATIONS.get("min_gap"),
    script:
        "../scripts/table_mitigations.py"


rule figure_mitigations:
    input:
        runs=MITIGATED_RUN_METRICS,
        table="results/tables/mitigations.csv",
    output:
        curves_png=[
            report(
                formats["png"],
                caption="../report/mitigation_curves_figure.rst",
                category="Mitigations",
                subcategory="Learning curves per strategy",
                labels={"experiment": experiment, "strategy": strategy},
            )
            for experiment, strategies in MITIGATION_CURVES.items()
            for strategy, formats in strategies.items()
        ],
        curves_pdf=[
            formats["pdf"]
            for strategies in MITIGATION_CURVES.values()
            for formats in strategies.values()
        ],
        gap_png=report(
            "results/figures/gap_closed.png",
            caption="../report/gap_closed_figure.rst",
            category="Mitigations",
        ),
        gap_pdf="results/figures/gap_closed.pdf",
    log:
        "logs/report/figure_mitigations.log",
    conda:
        ENV
    params:
        unmitigated=UNMITIGATED_CONDITIONS,
        curves=MITIGATION_CURVES,
    script:
        "../scripts/figure_mitigations.py"
