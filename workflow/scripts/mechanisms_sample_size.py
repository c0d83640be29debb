from pathlib import Path

from regurgitate.jobs.analyze import mechanisms_sample_size
from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    mechanisms_sample_size(
        student_path=Path(snakemake.input.student),
        synthetic_paths=dict(snakemake.params.sources),
        settings=dict(snakemake.params.settings),
        out=Path(snakemake.output[0]),
    )
