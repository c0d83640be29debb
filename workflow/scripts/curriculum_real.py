from pathlib import Path

from regurgitate.jobs.curricula import curriculum_real
from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    curriculum_real(Path(snakemake.input[0]), snakemake.params.seed, Path(snakemake.output[0]))
