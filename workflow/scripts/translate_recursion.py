from pathlib import Path

from regurgitate.jobs.generate import translate_pool
from regurgitate.jobs.log import job

with job(snakemake.log[0], threads=snakemake.threads):
    translate_pool(
        name=snakemake.params.name,
        model_path=Path(snakemake.input.model),
        tokenizer_path=Path(snakemake.input.tokenizer),
        pool_path=Path(snakemake.input.sources),
        decoding=dict(snakemake.params.decoding),
        out=Path(snakemake.output[0]),
        device=snakemake.params.device,
        precision=snakemake.params.precision,
    )
