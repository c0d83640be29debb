from pathlib import Path

from regurgitate.jobs.log import job
from regurgitate.jobs.open_weights import translate_pool_open_weights

with job(snakemake.log[0], threads=snakemake.threads):
    translate_pool_open_weights(
        name=snakemake.params.name,
        generator=dict(snakemake.params.generator),
        prompts=snakemake.params.prompts,
        pool_path=Path(snakemake.input.sources),
        out=Path(snakemake.output[0]),
        device=snakemake.params.device,
        weights=Path(snakemake.input.model),
    )
