from pathlib import Path

from regurgitate.jobs.curricula import curriculum_detector
from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    curriculum_detector(
        student_path=Path(snakemake.input.student),
        synthetic_path=Path(snakemake.input.synthetic),
        generator=snakemake.wildcards.generator,
        p_human_path=Path(snakemake.input.p_human),
        seed=snakemake.params.seed,
        out=Path(snakemake.output[0]),
    )
