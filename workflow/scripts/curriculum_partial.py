from pathlib import Path

from regurgitate.jobs.curricula import curriculum_partial
from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    curriculum_partial(
        student_path=Path(snakemake.input.student),
        synthetic_path=Path(snakemake.input.synthetic),
        generator=snakemake.wildcards.generator,
        percent=int(snakemake.wildcards.percent),
        seed=snakemake.params.seed,
        out=Path(snakemake.output[0]),
    )
