from pathlib import Path

from regurgitate.jobs.log import job
from regurgitate.jobs.report import table_html

with job(snakemake.log[0]):
    table_html(table_path=Path(snakemake.input[0]), out=Path(snakemake.output[0]))
