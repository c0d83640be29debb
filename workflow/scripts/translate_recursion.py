from pathlib import Path

from regurgitate.jobs.generate import translate_pool
from regurgitate.jobs.log import job

with job(snakemake.log[0], threads=snakemake.threads):
    translate_pool(
        snakemake.params.name,
        Path(snakemake.input.model),
        Path(snakemake.input.tokenizer),
        Path(snakemake.input.sources),
        dict(snakemake.params.decoding),
        Path(snakemake.output[0]),
        device=snakemake.params.device,
        precision=snakemake.params.precision,
    )
