from pathlib import Path

from regurgitate.logs import job
from regurgitate.pipeline import generate_job

with job(snakemake.log[0], threads=snakemake.threads):
    generate_job(
        name=f"reverse model on {snakemake.wildcards.generator}",
        model_path=Path(snakemake.input.model),
        tokenizer_path=Path(snakemake.input.tokenizer),
        pool_path=Path(snakemake.input.pool),
        decoding=dict(snakemake.params.decoding),
        out=Path(snakemake.output[0]),
        device=snakemake.params.device,
        precision=snakemake.params.precision,
    )
