from pathlib import Path

from regurgitate.jobs.log import job
from regurgitate.jobs.recursion import recursion_sample_size

with job(snakemake.log[0]):
    recursion_sample_size(
        human_paths=list(snakemake.input.human),
        synthetic_paths=list(snakemake.input.synthetic),
        cap=snakemake.params.cap,
        keep_punctuation=snakemake.params.keep_punctuation,
        out=Path(snakemake.output[0]),
    )
