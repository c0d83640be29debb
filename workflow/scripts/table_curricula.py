from pathlib import Path

from regurgitate.jobs.curricula import table_curricula
from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    table_curricula(prefixes=list(snakemake.params.prefixes), out=Path(snakemake.output[0]))
