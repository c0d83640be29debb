from pathlib import Path

from regurgitate.jobs.curricula import curriculum_partial
from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    curriculum_partial(
        Path(snakemake.input.student),
        Path(snakemake.input.synthetic),
        snakemake.wildcards.generator,
        int(snakemake.wildcards.percent),
        snakemake.params.seed,
        Path(snakemake.output[0]),
    )
