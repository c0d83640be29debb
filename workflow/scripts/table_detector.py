from pathlib import Path

from regurgitate.jobs.log import job
from regurgitate.jobs.mitigate import table_detector

with job(snakemake.log[0]):
    table_detector(metric_paths=list(snakemake.input), out=Path(snakemake.output[0]))
