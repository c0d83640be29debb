rule table_scratch:
    input:
        scratch_runs,
    output:
        report(
            "results/tables/scratch.csv",
            caption="../report/scratch_table.rst",
            category="Experiment E2: students from scratch",
        ),
    log:
        "logs/report/table_scratch.log",
    conda:
        ENV
    script:
        "../../scripts/table_runs.py"


rule figure_scratch:
    input:
        "results/tables/scratch.csv",
    output:
        png=report(
            "results/figures/scratch.png",
            caption="../report/scratch_figure.rst",
            category="Experiment E2: students from scratch",
        ),
        pdf="results/figures/scratch.pdf",
    log:
        "logs/report/figure_scratch.log",
    conda:
        ENV
    params:
        title="Students trained from scratch (E2): human vs generated targets",
    script:
        "../../scripts/figure_learning_curves.py"


rule table_generators:
    input:
        expand(
            "results/generators/{generator}/metrics.json",
            generator=config["generators"],
        ),
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
