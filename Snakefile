# The regurgitative-training study: `snakemake --cores N` rebuilds every table and figure.


# A --configfile replaces the default study instead of being merged into it, so that a preset
# never inherits keys (generators, overrides) that it does not name; --config still overrides.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/generate.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/analyze.smk"
include: "workflow/rules/mitigate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/recursion.smk"


rule all:
    default_target: True
    input:
        expand("results/tables/{experiment}.csv", experiment=EXPERIMENTS),
        expand(
            "results/figures/{name}.{ext}",
            name=[*EXPERIMENTS, "mechanisms", "loss_vs_mechanisms", "partial"],
            ext=["png", "pdf"],
        ),
        "results/tables/generators.csv",
        expand("results/tables/{name}.html", name=TABLES),
        "results/tables/mechanisms.csv",
        "results/tables/partial.csv",
        "results/tables/curricula.csv",
        expand("results/tables/{name}.csv", name=MITIGATION_TABLES),
        expand(
            "results/figures/gap_closed.{ext}",
            ext=["png", "pdf"] if MITIGATION_STRATEGIES else [],
        ),
        RECURSION_TARGETS,
