from pathlib import Path

from regurgitate.logs import job
from regurgitate.mitigation_jobs import concat_tables_job

with job(snakemake.log[0]):
    concat_tables_job(list(snakemake.input), Path(snakemake.output[0]))
