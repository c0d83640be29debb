from pathlib import Path

from regurgitate.jobs.curricula import curriculum_ordered
from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    curriculum_ordered(
        Path(snakemake.input.student),
        Path(snakemake.input.synthetic),
        snakemake.wildcards.generator,
        Path(snakemake.input.scores),
        snakemake.wildcards.metric,
        snakemake.params.seed,
        Path(snakemake.output[0]),
    )
