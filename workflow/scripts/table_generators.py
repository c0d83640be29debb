from pathlib import Path

from regurgitate.jobs.log import job
from regurgitate.jobs.report import table_generators

with job(snakemake.log[0]):
    table_generators(list(snakemake.input), Path(snakemake.output[0]))
