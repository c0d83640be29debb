from pathlib import Path

from regurgitate.jobs.curricula import curriculum_sources
from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    curriculum_sources(
        student_path=Path(snakemake.input.student),
        selecting_path=Path(snakemake.input.selecting),
        out=Path(snakemake.output[0]),
    )
