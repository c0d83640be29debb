from pathlib import Path

from regurgitate.jobs.curricula import curriculum_ordered
from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    curriculum_ordered(
        student_path=Path(snakemake.input.student),
        synthetic_path=Path(snakemake.input.synthetic),
        generator=snakemake.wildcards.generator,
        scores_path=Path(snakemake.input.scores),
        metric=snakemake.wildcards.metric,
        seed=snakemake.params.seed,
        out=Path(snakemake.output[0]),
    )
