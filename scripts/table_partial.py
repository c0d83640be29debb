from pathlib import Path

from regurgitate.logs import job
from regurgitate.reports import partial_table_job

with job(snakemake.log[0]):
    specs = dict(snakemake.params.specs)
    partial_table_job(
        {experiment: snakemake.input[experiment] for experiment in specs},
        specs,
        Path(snakemake.output[0]),
    )
