from pathlib import Path

from regurgitate.jobs.log import job
from regurgitate.jobs.rule_graph import figure_rule_graph

with job(snakemake.log[0]):
    figure_rule_graph(
        graph_path=Path(snakemake.params.graph),
        png=Path(snakemake.output.png),
        pdf=Path(snakemake.output.pdf),
    )
