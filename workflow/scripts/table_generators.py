from pathlib import Path

from regurgitate.jobs.log import job
from regurgitate.jobs.report import table_generators

with job(snakemake.log[0]):
    table_generators(metric_paths=list(snakemake.input), out=Path(snakemake.output[0]))
