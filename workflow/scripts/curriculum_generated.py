from pathlib import Path

from regurgitate.jobs.curricula import curriculum_generated
from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    curriculum_generated(
        student_path=Path(snakemake.input.student),
        synthetic_path=Path(snakemake.input.synthetic),
        generator=snakemake.params.generator,
        seed=snakemake.params.seed,
        out=Path(snakemake.output[0]),
    )
