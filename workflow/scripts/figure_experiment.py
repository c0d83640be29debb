from pathlib import Path

from regurgitate.jobs.log import job
from regurgitate.jobs.report import figure_experiment

with job(snakemake.log[0]):
    figure_experiment(
        Path(snakemake.input.summary),
        Path(snakemake.output.png),
        Path(snakemake.output.pdf),
        title=snakemake.params.title,
        reference_metrics=dict(snakemake.params.references),
    )
