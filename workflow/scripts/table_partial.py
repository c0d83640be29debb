from pathlib import Path

from regurgitate.jobs.analyze import table_partial
from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    table_partial(
        list(snakemake.input.metrics),
        list(snakemake.input.hypotheses),
        Path(snakemake.input.test),
        dict(snakemake.params.specs),
        Path(snakemake.output[0]),
        seed=snakemake.params.seed,
    )
