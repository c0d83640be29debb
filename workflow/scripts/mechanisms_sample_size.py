from pathlib import Path

from regurgitate.jobs.analyze import mechanisms_sample_size
from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    mechanisms_sample_size(
        Path(snakemake.input.student),
        dict(snakemake.params.sources),
        dict(snakemake.params.settings),
        Path(snakemake.output[0]),
    )
