# M: the mechanisms (each source's errors and lexical diversity, and how they relate to the
# students' loss), and what real data is worth (partial real data).
from regurgitate.study.config import full_set_conditions
from regurgitate.study.vocabulary import EXPERIMENTS as EXPERIMENT_DESCRIPTIONS, HUMAN

MECHANISM_SOURCES = [HUMAN, *GENERATORS]
# Per experiment, where each generator's full synthetic set is read: its condition at the
# largest size.
FULL_SETS = {
    experiment: {
        "size": max(config[experiment]["sizes"]),
        "conditions": full_set_conditions(config, experiment),
    }
    for experiment in EXPERIMENTS
}


# The metrics file of every run of every experiment.
ALL_RUN_METRICS = [
    path for experiment in EXPERIMENTS for path in run_metrics(experiment)
]


# Tables and figures take seconds (table_partial resamples test sentences: a job of its own).
localrules:
    mechanisms_sample_size,
    table_mechanisms,
    figure_mechanisms,
    figure_partial,


rule mechanisms_sample_size:
    input:
        student="results/pools/student.parquet",
        synthetic=list(MEASURED_SOURCES.values()),
    output:
        "results/mechanisms/sample-size.json",
    log:
        "logs/mechanisms/sample-size.log",
    conda:
        ENV
    params:
        sources=MEASURED_SOURCES,
        settings=MECHANISMS,
    script:
        "../scripts/mechanisms_sample_size.py"


rule mechanisms_source:
    input:
        # A generator's synthetic data; the human targets are the student pool's own.
        synthetic=lambda wildcards: (
            []
            if wildcards.source == HUMAN
            else f"results/synthetic/{wildcards.source}.parquet"
        ),
        student="results/pools/student.parquet",
        sample_size="results/mechanisms/sample-size.json",
    output:
        "results/mechanisms/{source}.json",
    log:
        "logs/mechanisms/{source}.log",
    benchmark:
        "benchmarks/results/mechanisms_source/{source}.tsv"
    conda:
        ENV
    resources:
        mem_mb=4000,
    params:
        name="{source}",
        settings=MECHANISMS,
        seed=config["seed"],
    script:
        "../scripts/mechanisms_source.py"


rule table_mechanisms:
    input:
        records=expand("results/mechanisms/{source}.json", source=MECHANISM_SOURCES),
        runs=ALL_RUN_METRICS,
        generators=expand(
            "results/generators/{generator}/metrics.json", generator=GENERATORS
        ),
    output:
        "results/tables/mechanisms.csv",
    log:
        "logs/report/table_mechanisms.log",
    conda:
        ENV
    params:
        losses=FULL_SETS,
    script:
        "../scripts/table_mechanisms.py"


rule figure_mechanisms:
    input:
        table="results/tables/mechanisms.csv",
        records=expand("results/mechanisms/{source}.json", source=MECHANISM_SOURCES),
    output:
        mechanisms_png=report(
            "results/figures/mechanisms.png",
            caption="../report/mechanisms_figure.rst",
            category="Mechanisms",
        ),
        mechanisms_pdf="results/figures/mechanisms.pdf",
        loss_png=report(
            "results/figures/loss_vs_mechanisms.png",
            caption="../report/loss_figure.rst",
            category="Mechanisms",
        ),
        loss_pdf="results/figures/loss_vs_mechanisms.pdf",
    log:
        "logs/report/figure_mechanisms.log",
    conda:
        ENV
    params:
        experiments=EXPERIMENTS,
    script:
        "../scripts/figure_mechanisms.py"


rule table_partial:
    input:
        metrics=ALL_RUN_METRICS,
        hypotheses=run_hypotheses(ALL_RUN_METRICS),
        test="results/pools/test.parquet",
        generators="results/tables/generators.csv",
    output:
        "results/tables/partial.csv",
    log:
        "logs/report/table_partial.log",
    conda:
        ENV
    params:
        specs=FULL_SETS,
        seed=config["seed"],
    script:
        "../scripts/table_partial.py"


rule figure_partial:
    input:
        **{experiment: f"results/tables/{experiment}.csv" for experiment in EXPERIMENTS},
        table="results/tables/partial.csv",
    output:
        png=report(
            "results/figures/partial.png",
            caption="../report/partial_figure.rst",
            category="Partial real data",
        ),
        pdf="results/figures/partial.pdf",
    log:
        "logs/report/figure_partial.log",
    conda:
        ENV
    params:
        titles={e: EXPERIMENT_DESCRIPTIONS[e].short_title for e in EXPERIMENTS},
    script:
        "../scripts/figure_partial.py"
