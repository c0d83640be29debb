from pathlib import Path

from regurgitate.logs import job
from regurgitate.reports import source_mechanisms_job

with job(snakemake.log[0]):
    synthetic = snakemake.input.get("synthetic")
    source_mechanisms_job(
        Path(snakemake.input.student),
        Path(synthetic) if synthetic else None,
        snakemake.params.name,
        dict(snakemake.params.settings),
        snakemake.params.seed,
        Path(snakemake.output[0]),
    )
