from pathlib import Path

from regurgitate.jobs.log import job
from regurgitate.jobs.recursion import table_recursion

with job(snakemake.log[0]):
    table_recursion(
        list(snakemake.input.metrics),
        list(snakemake.input.hypotheses),
        list(snakemake.input.measures),
        Path(snakemake.input.test),
        snakemake.params.seed,
        Path(snakemake.output[0]),
    )
