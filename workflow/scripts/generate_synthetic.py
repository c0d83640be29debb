from pathlib import Path

from regurgitate.jobs.generate import generate_synthetic
from regurgitate.jobs.log import job

with job(snakemake.log[0], threads=snakemake.threads):
    model, tokenizer = snakemake.input.get("model"), snakemake.input.get("tokenizer")
    generate_synthetic(
        name=snakemake.wildcards.generator,
        generator=dict(snakemake.params.generator),
        prompts=snakemake.params.prompts,
        pool_path=Path(snakemake.input.pool),
        out=Path(snakemake.output.table),
        cost_out=Path(snakemake.output.cost),
        model_path=Path(model) if model else None,
        tokenizer_path=Path(tokenizer) if tokenizer else None,
        decoding=dict(snakemake.params.decoding),
        device=snakemake.params.device,
        precision=snakemake.params.precision,
    )
