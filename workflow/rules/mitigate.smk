# S1 quality-ordered, S2 mixed and S3 detector-ranked curricula, and their tables and figures.


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
        "../../scripts/reverse_pairs.py"


rule train_reverse:
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
    conda:
        ENV
    threads: TRAIN_THREADS
    resources:
        mem_mb=8000,
        runtime=24 * 60,
        gpu=GPUS,
    params:
        rows=None,
        architecture=lambda wc: config["architectures"][
            MITIGATIONS["reverse_architecture"]
        ],
        training=lambda wc: training_settings(
            config, MITIGATIONS.get("reverse_training")
        ),
        checkpoint="results/checkpoints/reverse/last.pt",
        device=config.get("device", "auto"),
    script:
        "../../scripts/train_model.py"


rule reverse_synthetic:
    input:
        "results/synthetic/{generator}.parquet",
    output:
        "results/quality/reversed/{generator}.parquet",
    log:
        "logs/reverse_synthetic/{generator}.log",
    conda:
        ENV
    script:
        "../../scripts/reverse_pairs.py"


rule back_translate:
    input:
        model="results/reverse/model.pt",
        tokenizer="results/tokenizer/spm.model",
        pool="results/quality/reversed/{generator}.parquet",
    output:
        "results/quality/backtranslation/{generator}.parquet",
    log:
        "logs/back_translate/{generator}.log",
    conda:
        ENV
    threads: DECODE_THREADS
    resources:
        mem_mb=4000,
        gpu=GPUS,
    params:
        decoding=decoding_settings(config),
        device=config.get("device", "auto"),
        precision=config["training"].get("precision", "auto"),
    script:
        "../../scripts/back_translate.py"


rule pair_nll:
    input:
        model=lambda wc: (
            "results/reverse/model.pt"
            if wc.direction == "reverse"
            else f"results/generators/{MITIGATIONS['forward_scorer']}/model.pt"
        ),
        tokenizer="results/tokenizer/spm.model",
        pairs="results/synthetic/{generator}.parquet",
    output:
        "results/quality/nll/{direction}/{generator}.parquet",
    log:
        "logs/pair_nll/{direction}/{generator}.log",
    wildcard_constraints:
        direction="forward|reverse",
    conda:
        ENV
    threads: DECODE_THREADS
    resources:
        mem_mb=4000,
        gpu=GPUS,
    params:
        device=config.get("device", "auto"),
        precision=config["training"].get("precision", "auto"),
    script:
        "../../scripts/pair_nll.py"


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
    conda:
        ENV
    params:
        metrics=QUALITY_METRICS,
    script:
        "../../scripts/quality_scores.py"


rule curriculum_ordered:
    input:
        student="results/pools/student.parquet",
        synthetic="results/synthetic/{generator}.parquet",
        scores="results/quality/{generator}.parquet",
    output:
        "results/curricula/{experiment}/ordered-{generator}-{metric}.parquet",
    log:
        "logs/curricula/{experiment}/ordered-{generator}-{metric}.log",
    conda:
        ENV
    params:
        seed=config["seed"],
    script:
        "../../scripts/curriculum_ordered.py"


rule curriculum_mixed:
    input:
        unpack(mix_synthetics),
        student="results/pools/student.parquet",
    output:
        "results/curricula/{experiment}/mixed-{mix}.parquet",
    log:
        "logs/curricula/{experiment}/mixed-{mix}.log",
    conda:
        ENV
    params:
        generators=lambda wc: wc.mix.split("+"),
        seed=config["seed"],
    script:
        "../../scripts/curriculum_mixed.py"


rule mixed_mechanisms:
    input:
        student="results/pools/student.parquet",
        synthetic=lambda wc: f"results/curricula/{mitigated_experiments()[0]}/mixed-{wc.mix}.parquet",
    output:
        "results/mechanisms/mixed-{mix}.json",
    log:
        "logs/mechanisms/mixed-{mix}.log",
    conda:
        ENV
    params:
        name="mixed-{mix}",
        settings=MECHANISMS,
        seed=config["seed"],
    script:
        "../../scripts/mechanisms_source.py"


rule generate_detector_pool:
    input:
        unpack(synthetic_inputs),
        pool="results/pools/detector.parquet",
    output:
        table="results/synthetic/detector/{generator}.parquet",
        cost="results/synthetic/detector/{generator}.cost.json",
    log:
        "logs/generate_synthetic/detector/{generator}.log",
    conda:
        ENV
    threads: DECODE_THREADS
    resources:
        mem_mb=4000,
        gpu=lambda wc: GPUS if is_local(wc.generator) else 0,
    params:
        generator=lambda wc: config["generators"][wc.generator],
        prompts=config.get("prompts"),
        decoding=synthetic_decoding,
        device=config.get("device", "auto"),
        precision=config["training"].get("precision", "auto"),
    script:
        "../../scripts/generate_synthetic.py"


rule train_detector:
    input:
        pool="results/pools/detector.parquet",
        synthetic="results/synthetic/detector/{generator}.parquet",
    output:
        model="results/detector/{generator}/detector.joblib",
        metrics="results/detector/{generator}/metrics.json",
    log:
        "logs/train_detector/{generator}.log",
    conda:
        ENV
    params:
        held_out=MITIGATIONS.get("detector_held_out"),
        regularisation=MITIGATIONS.get("detector_regularisation"),
        seed=config["seed"],
    script:
        "../../scripts/train_detector.py"


rule detector_scores:
    input:
        detector="results/detector/{generator}/detector.joblib",
        synthetic="results/synthetic/{generator}.parquet",
    output:
        "results/detector/{generator}/p_human.parquet",
    log:
        "logs/detector_scores/{generator}.log",
    conda:
        ENV
    script:
        "../../scripts/detector_scores.py"


rule curriculum_detector:
    input:
        student="results/pools/student.parquet",
        synthetic="results/synthetic/{generator}.parquet",
        p_human="results/detector/{generator}/p_human.parquet",
    output:
        "results/curricula/{experiment}/detector-{generator}.parquet",
    log:
        "logs/curricula/{experiment}/detector-{generator}.log",
    conda:
        ENV
    params:
        seed=config["seed"],
    script:
        "../../scripts/curriculum_detector.py"


rule table_quality:
    input:
        expand(
            "results/quality/{generator}.correlation.csv", generator=QUALITY_GENERATORS
        ),
    output:
        report(
            "results/tables/quality.csv",
            caption="../report/quality_table.rst",
            category="Mitigations",
        ),
    log:
        "logs/report/table_quality.log",
    conda:
        ENV
    script:
        "../../scripts/table_concat.py"


rule table_detector:
    input:
        expand(
            "results/detector/{generator}/metrics.json", generator=QUALITY_GENERATORS
        ),
    output:
        report(
            "results/tables/detector.csv",
            caption="../report/detector_table.rst",
            category="Mitigations",
        ),
    log:
        "logs/report/table_detector.log",
    conda:
        ENV
    script:
        "../../scripts/table_detector.py"


rule table_mitigations:
    input:
        runs=lambda wc: [
            path for e in mitigated_experiments() for path in run_metrics(e)
        ],
        mixes=expand(
            "results/mechanisms/mixed-{mix}.json",
            mix=["+".join(mix) for mix in MITIGATIONS.get("mixes", [])],
        ),
    output:
        report(
            "results/tables/mitigations.csv",
            caption="../report/mitigations_table.rst",
            category="Mitigations",
        ),
    log:
        "logs/report/table_mitigations.log",
    conda:
        ENV
    params:
        unmitigated=lambda wc: {
            e: full_set_conditions(config, e) for e in mitigated_experiments()
        },
        min_gap=MITIGATIONS.get("min_gap"),
    script:
        "../../scripts/table_mitigations.py"


rule figure_mitigations:
    input:
        runs=lambda wc: [
            path for e in mitigated_experiments() for path in run_metrics(e)
        ],
        table="results/tables/mitigations.csv",
    output:
        curves=[
            f"results/figures/mitigations/{e}-{s}.{ext}"
            for e in mitigated_experiments()
            for s in MITIGATION_STRATEGIES
            for ext in ("png", "pdf")
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
        unmitigated=lambda wc: {
            e: full_set_conditions(config, e) for e in mitigated_experiments()
        },
        curves={
            e: {
                s: {
                    ext: f"results/figures/mitigations/{e}-{s}.{ext}"
                    for ext in ("png", "pdf")
                }
                for s in MITIGATION_STRATEGIES
            }
            for e in mitigated_experiments()
        },
    script:
        "../../scripts/figure_mitigations.py"
