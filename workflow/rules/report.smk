# Each experiment's table and learning curves, and the generators' own scores.


rule table_experiment:
    input:
        unpack(base_model_metrics),
        metrics=experiment_run_metrics,
        hypotheses=experiment_run_hypotheses,
        test="results/pools/test.parquet",
    output:
        report(
            "results/tables/{experiment}.csv",
            caption="../report/experiment_table.rst",
            category="Experiments",
            subcategory="{experiment}",
        ),
    log:
        "logs/report/table_{experiment}.log",
    conda:
        ENV
    params:
        seed=config["seed"],
    script:
        "../../scripts/table_experiment.py"


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
        "../../scripts/figure_experiment.py"


rule table_generators:
    input:
        expand("results/generators/{generator}/metrics.json", generator=GENERATORS),
    output:
        report(
            "results/tables/generators.csv",
            caption="../report/generators_table.rst",
            category="Generators",
        ),
    log:
        "logs/report/table_generators.log",
    conda:
        ENV
    script:
        "../../scripts/table_generators.py"
