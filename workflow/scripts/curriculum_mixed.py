from pathlib import Path

from regurgitate.jobs.curricula import curriculum_mixed
from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    curriculum_mixed(
        Path(snakemake.input.student),
        {g: Path(snakemake.input[g]) for g in snakemake.params.generators},
        snakemake.params.seed,
        Path(snakemake.output[0]),
    )
