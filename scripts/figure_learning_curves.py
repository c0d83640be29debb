from pathlib import Path

from regurgitate.logs import job
from regurgitate.reports import learning_curves_job

with job(snakemake.log[0]):
    learning_curves_job(
        Path(snakemake.input.summary),
        Path(snakemake.output.png),
        Path(snakemake.output.pdf),
        title=snakemake.params.title,
        reference_metrics=dict(snakemake.params.references),
    )
