from pathlib import Path

from regurgitate.jobs.curricula import curriculum_generated
from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    curriculum_generated(
        Path(snakemake.input.student),
        Path(snakemake.input.synthetic),
        snakemake.params.generator,
        snakemake.params.seed,
        Path(snakemake.output[0]),
    )
