from pathlib import Path

from regurgitate.jobs.curricula import curriculum_real
from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    curriculum_real(
        student_path=Path(snakemake.input[0]),
        seed=snakemake.params.seed,
        out=Path(snakemake.output[0]),
    )
