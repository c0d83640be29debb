from pathlib import Path

from regurgitate.detector import detector_job
from regurgitate.logs import job

with job(snakemake.log[0]):
    detector_job(
        Path(snakemake.input.pool),
        Path(snakemake.input.synthetic),
        snakemake.wildcards.generator,
        snakemake.params.held_out,
        snakemake.params.seed,
        Path(snakemake.output.model),
        Path(snakemake.output.metrics),
        regularisation=snakemake.params.regularisation,
    )
