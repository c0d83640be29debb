from pathlib import Path

from regurgitate.jobs.log import job
from regurgitate.jobs.mitigate import train_detector

with job(snakemake.log[0]):
    train_detector(
        Path(snakemake.input.pool),
        Path(snakemake.input.synthetic),
        snakemake.wildcards.generator,
        snakemake.params.held_out,
        snakemake.params.seed,
        Path(snakemake.output.model),
        Path(snakemake.output.metrics),
        regularisation=snakemake.params.regularisation,
    )
