from pathlib import Path

from regurgitate.jobs.log import job
from regurgitate.jobs.recursion import recursion_sample_size

with job(snakemake.log[0]):
    recursion_sample_size(
        list(snakemake.input.human),
        list(snakemake.input.synthetic),
        snakemake.params.cap,
        snakemake.params.keep_punctuation,
        Path(snakemake.output[0]),
    )
