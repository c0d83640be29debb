from pathlib import Path

from regurgitate.jobs.analyze import mechanisms_source
from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    synthetic = snakemake.input.get("synthetic")
    mechanisms_source(
        student_path=Path(snakemake.input.student),
        synthetic_path=Path(synthetic) if synthetic else None,
        name=snakemake.params.name,
        settings=dict(snakemake.params.settings),
        sample_size_path=Path(snakemake.input.sample_size),
        seed=snakemake.params.seed,
        out=Path(snakemake.output[0]),
    )
