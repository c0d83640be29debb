from pathlib import Path

from regurgitate.jobs.log import job
from regurgitate.jobs.mitigate import table_quality

with job(snakemake.log[0]):
    table_quality(correlation_paths=list(snakemake.input), out=Path(snakemake.output[0]))
