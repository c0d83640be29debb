from pathlib import Path

from regurgitate.jobs.analyze import table_partial
from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    specs = dict(snakemake.params.specs)
    table_partial(
        {experiment: snakemake.input[experiment] for experiment in specs},
        specs,
        Path(snakemake.output[0]),
    )
