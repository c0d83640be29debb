from pathlib import Path

from regurgitate.jobs.analyze import table_mechanisms
from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    table_mechanisms(
        list(snakemake.input.records),
        list(snakemake.input.runs),
        list(snakemake.input.generators),
        dict(snakemake.params.losses),
        Path(snakemake.output[0]),
    )
