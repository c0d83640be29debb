from pathlib import Path

from regurgitate.jobs.curricula import curriculum_sources
from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    curriculum_sources(
        Path(snakemake.input.student), Path(snakemake.input.selecting), Path(snakemake.output[0])
    )
