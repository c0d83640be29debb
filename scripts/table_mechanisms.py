from pathlib import Path

from regurgitate.logs import job
from regurgitate.reports import mechanisms_table_job

with job(snakemake.log[0]):
    mechanisms_table_job(
        list(snakemake.input.records),
        list(snakemake.input.runs),
        list(snakemake.input.generators),
        dict(snakemake.params.losses),
        Path(snakemake.output[0]),
    )
