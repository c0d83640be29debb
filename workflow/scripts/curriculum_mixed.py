from pathlib import Path

from regurgitate.jobs.curricula import curriculum_mixed
from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    curriculum_mixed(
        student_path=Path(snakemake.input.student),
        synthetic_paths={g: Path(snakemake.input[g]) for g in snakemake.params.generators},
        seed=snakemake.params.seed,
        out=Path(snakemake.output[0]),
    )
