# Each experiment's table and learning curves, the generators' own scores, every table as a
# page of the report, and the study's rule graph.
import hashlib
import json

from regurgitate.study.vocabulary import EXPERIMENTS as EXPERIMENT_DESCRIPTIONS
from regurgitate.study.vocabulary import FINETUNE, RECURSION

# Every table of the study: rule all asks for each with its page of the report (table_html).
TABLES = [
    *EXPERIMENTS,
    "generators",
    "curricula",
    "mechanisms",
    "partial",
    *MITIGATION_TABLES,
    *([RECURSION] if RECURSION in config else []),
]
# Where a table appears in the report, beside the figures of the same part of the study.
TABLE_CATEGORIES = {
    **{experiment: "Experiments" for experiment in EXPERIMENTS},
    "curricula": "Experiments",
    "generators": "Generators",
    "mechanisms": "Mechanisms",
    "partial": "Partial real data",
    "mitigations": "Mitigations",
    "quality": "Mitigations",
    "detector": "Mitigations",
    "recursion": "Recursion",
}


# Reference lines of an experiment's figure (E1 draws the base model's own BLEU before
# fine-tuning), and the base model's metrics that E1's table carries.
REFERENCE_METRICS = {
    experiment: (
        {
            f"base model ({config[FINETUNE]['base']}) before fine-tuning": (
                f"results/generators/{config[FINETUNE]['base']}/metrics.json"
            )
        }
        if experiment == FINETUNE
        else {}
    )
    for experiment in EXPERIMENTS
}


# The report's landing page: the study, and the configuration this run used.
report: "../report/workflow.rst"


# Tables and figures take seconds.
localrules:
    figure_experiment,
    figure_rule_graph,
    table_generators,
    table_html,


rule table_experiment:
    input:
        unpack(
            lambda wildcards: {
                "base": path
                for path in REFERENCE_METRICS[wildcards.experiment].values()
            }
        ),
        metrics=lambda wildcards: run_metrics(wildcards.experiment),
        hypotheses=lambda wildcards: run_hypotheses(run_metrics(wildcards.experiment)),
        test="results/pools/test.parquet",
        generators=expand(
            "results/generators/{generator}/metrics.json", generator=GENERATORS
        ),
    output:
        "results/tables/{experiment}.csv",
    log:
        "logs/report/table_{experiment}.log",
    conda:
        ENV
    params:
        seed=config["seed"],
        # Whose own translations `self` trains on: E1's base model.
        self_generator=lambda wildcards: (
            config[FINETUNE]["base"] if wildcards.experiment == FINETUNE else None
        ),
    script:
        "../scripts/table_experiment.py"


rule figure_experiment:
    input:
        unpack(lambda wildcards: REFERENCE_METRICS[wildcards.experiment]),
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
        title=lambda wildcards: EXPERIMENT_DESCRIPTIONS[wildcards.experiment].title,
        references=lambda wildcards: REFERENCE_METRICS[wildcards.experiment],
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
            category=lambda wildcards: TABLE_CATEGORIES.get(wildcards.table, "Tables"),
            subcategory=lambda wildcards: (
                wildcards.table if wildcards.table in EXPERIMENTS else None
            ),
        ),
    log:
        "logs/report/table_html/{table}.log",
    conda:
        ENV
    script:
        "../scripts/table_html.py"


# The rule graph of the study (a box per rule, an arrow to each rule that reads its output), for
# the report in place of Snakemake's job graph. The onstart handler (rules/common.smk) records it
# from the DAG of a run that holds rule all, the run that asks for this figure: so it is read by
# its path, not as an input (no job writes it). The config's digest is a parameter so that a run
# with another config, whose DAG may differ, draws it again.
RULE_GRAPH = ".snakemake/regurgitate/rule_graph.json"


rule figure_rule_graph:
    output:
        png=report(
            "results/figures/rule_graph.png",
            caption="../report/rule_graph_figure.rst",
            category="Workflow",
        ),
        pdf="results/figures/rule_graph.pdf",
    log:
        "logs/report/figure_rule_graph.log",
    conda:
        ENV
    params:
        graph=RULE_GRAPH,
        config=hashlib.sha256(
            json.dumps(config, sort_keys=True, default=str).encode()
        ).hexdigest(),
    script:
        "../scripts/figure_rule_graph.py"
