# Each experiment's table and learning curves, and the generators' own scores.


# The report's landing page: the study, and the configuration this run used.
report: "../report/workflow.rst"


# Tables and figures take seconds.
localrules:
    figure_experiment,
    table_generators,
    table_html,


rule table_experiment:
    input:
        unpack(base_model_metrics),
        metrics=experiment_run_metrics,
        hypotheses=experiment_run_hypotheses,
        test="results/pools/test.parquet",
    output:
        "results/tables/{experiment}.csv",
    log:
        "logs/report/table_{experiment}.log",
    conda:
        ENV
    params:
        seed=config["seed"],
    script:
        "../scripts/table_experiment.py"


rule figure_experiment:
    input:
        unpack(reference_metrics),
        summary="results/tables/{experiment}.csv",
    output:
        png=report(
            "results/figures/{experiment}.png",
            caption="../report/experiment_figure.rst",
            category="Experiments",
            subcategory="{experiment}",
        ),
        pdf="results/figures/{experiment}.pdf",
    log:
        "logs/report/figure_{experiment}.log",
    conda:
        ENV
    params:
        title=experiment_title,
        references=reference_metrics,
    script:
        "../scripts/figure_experiment.py"


rule table_generators:
    input:
        expand("results/generators/{generator}/metrics.json", generator=GENERATORS),
    output:
        "results/tables/generators.csv",
    log:
        "logs/report/table_generators.log",
    conda:
        ENV
    script:
        "../scripts/table_generators.py"


# Every table as a page of the report, which shows HTML but only offers CSV for download.
rule table_html:
    input:
        "results/tables/{table}.csv",
    output:
        report(
            "results/tables/{table}.html",
            caption="../report/table.rst",
            category=table_category,
            subcategory=table_subcategory,
        ),
    log:
        "logs/report/table_html/{table}.log",
    conda:
        ENV
    script:
        "../scripts/table_html.py"
