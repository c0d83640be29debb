from pathlib import Path

from regurgitate.jobs.curricula import curriculum_detector
from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    curriculum_detector(
        Path(snakemake.input.student),
        Path(snakemake.input.synthetic),
        snakemake.wildcards.generator,
        Path(snakemake.input.p_human),
        snakemake.params.seed,
        Path(snakemake.output[0]),
    )
