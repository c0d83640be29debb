from pathlib import Path

from regurgitate.logs import job
from regurgitate.mitigation_jobs import detector_table_job

with job(snakemake.log[0]):
    detector_table_job(list(snakemake.input), Path(snakemake.output[0]))
