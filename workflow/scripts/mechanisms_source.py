from pathlib import Path

from regurgitate.jobs.analyze import mechanisms_source
from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    synthetic = snakemake.input.get("synthetic")
    mechanisms_source(
        Path(snakemake.input.student),
        Path(synthetic) if synthetic else None,
        snakemake.params.name,
        dict(snakemake.params.settings),
        Path(snakemake.input.sample_size),
        snakemake.params.seed,
        Path(snakemake.output[0]),
    )
