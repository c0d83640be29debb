from pathlib import Path

from regurgitate.jobs.log import job
from regurgitate.jobs.recursion import measures_recursion

with job(snakemake.log[0]):
    measures_recursion(
        Path(snakemake.input.human),
        Path(snakemake.input.synthetic),
        Path(snakemake.input.student),
        Path(snakemake.input.sample_size),
        dict(snakemake.params.labels),
        dict(snakemake.params.settings),
        snakemake.params.seed,
        Path(snakemake.output[0]),
        with_human=snakemake.params.with_human,
    )
