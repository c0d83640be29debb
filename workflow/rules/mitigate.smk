# The mitigations: S1 quality-ordered, S2 mixed and S3 detector-ranked curricula, what each
# needs, and their tables and figures. Mitigated conditions train and evaluate through the shared
# rules of train.smk and evaluate.smk.


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
    output:
        model="results/reverse/model.pt",
        summary="results/reverse/train.json",
    log:
        "logs/train_reverse.log",
    benchmark:
        "benchmarks/results/train_reverse/reverse.tsv"
    resources:
        mem_mb=mem_mb_of(reverse_training_scale),
        runtime=runtime_of(reverse_training_scale),
        gpu=GPUS,
        gpu_model=GPU_MODEL,
    params:
        rows=None,
        architecture=reverse_architecture,
        training=reverse_training,
        checkpoint="results/checkpoints/reverse/last.pt",
        device=DEVICE,


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
        mem_mb=mem_mb_of(back_translation_scale),
        runtime=runtime_of(back_translation_scale),
        gpu=GPUS,
        gpu_model=GPU_MODEL,
    params:
        decoding=decoding_settings(config),
        device=DEVICE,
        precision=PRECISION,
    script:
        "../scripts/back_translate.py"


rule pair_nll:
    input:
        model=nll_model,
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
        mem_mb=mem_mb_of(pair_nll_scale),
        runtime=runtime_of(pair_nll_scale),
        gpu=GPUS,
        gpu_model=GPU_MODEL,
    params:
        device=DEVICE,
        precision=PRECISION,
    script:
        "../scripts/pair_nll.py"


rule quality_scores:
    input:
        unpack(quality_inputs),
        student="results/pools/student.parquet",
        synthetic="results/synthetic/{generator}.parquet",
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
        metrics=CONFIGURED_QUALITY_METRICS,
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
        seed=run_seed,
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
        unpack(mix_synthetics),
        student="results/pools/student.parquet",
    output:
        "results/curricula/mixed-{mix}/{seed}.parquet",
    log:
        "logs/curricula/mixed-{mix}/{seed}.log",
    conda:
        ENV
    params:
        generators=mix_generators,
        seed=run_seed,
    script:
        "../scripts/curriculum_mixed.py"


# A mix's lexical diversity, measured like every source's: its curriculum stands in for a
# generator's synthetic data.
use rule mechanisms_source as mixed_mechanisms with:
    input:
        student="results/pools/student.parquet",
        synthetic=mix_curriculum_for_mechanisms,
        sample_size="results/mechanisms/sample-size.json",
    output:
        "results/mechanisms/mixed-{mix}.json",
    log:
        "logs/mechanisms/mixed-{mix}.log",
    benchmark:
        "benchmarks/results/mechanisms_source/mixed-{mix}.tsv"
    params:
        name="mixed-{mix}",
        settings=MECHANISMS,
        seed=config["seed"],


# --- S3: detector-ranked ----------------------------------------------------------------------
# Each generator translates the detector pool; a classifier learns human from generated targets
# there and ranks the generator's student-pool pairs by P(human).


use rule generate_synthetic as generate_detector_pool with:
    input:
        unpack(synthetic_inputs),
        pool="results/pools/detector.parquet",
    output:
        table="results/synthetic/detector/{generator}.parquet",
        cost="results/synthetic/detector/{generator}.cost.json",
    log:
        "logs/generate_synthetic/detector/{generator}.log",
    benchmark:
        "benchmarks/results/generate_detector_pool/{generator}.tsv"
    resources:
        mem_mb=mem_mb_of(detector_pool_scale),
        runtime=runtime_of(detector_pool_scale),
        gpu=generator_gpus,
        gpu_model=generator_gpu_model,


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
        seed=run_seed,
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
        runs=mitigated_run_metrics,
        mixes=expand("results/mechanisms/mixed-{mix}.json", mix=MIXES),
        experiment_tables=expand(
            "results/tables/{experiment}.csv", experiment=MITIGATED_EXPERIMENTS
        ),
    output:
        "results/tables/mitigations.csv",
    log:
        "logs/report/table_mitigations.log",
    conda:
        ENV
    params:
        unmitigated=unmitigated_conditions,
        min_gap=MITIGATIONS.get("min_gap"),
    script:
        "../scripts/table_mitigations.py"


rule figure_mitigations:
    input:
        runs=mitigated_run_metrics,
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
        unmitigated=unmitigated_conditions,
        curves=MITIGATION_CURVES,
    script:
        "../scripts/figure_mitigations.py"
