from pathlib import Path

from regurgitate.jobs.log import job
from regurgitate.jobs.quality_models import back_translate

with job(snakemake.log[0], threads=snakemake.threads):
    back_translate(
        generator=snakemake.wildcards.generator,
        model_path=Path(snakemake.input.model),
        tokenizer_path=Path(snakemake.input.tokenizer),
        pool_path=Path(snakemake.input.pool),
        decoding=dict(snakemake.params.decoding),
        out=Path(snakemake.output[0]),
        device=snakemake.params.device,
        precision=snakemake.params.precision,
    )
