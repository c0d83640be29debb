from pathlib import Path

from regurgitate.jobs.figures import figure_experiment
from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    figure_experiment(
        summary_path=Path(snakemake.input.summary),
        png=Path(snakemake.output.png),
        pdf=Path(snakemake.output.pdf),
        title=snakemake.params.title,
        reference_metrics=dict(snakemake.params.references),
    )
