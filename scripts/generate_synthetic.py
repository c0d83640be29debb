from pathlib import Path

from regurgitate.generators.jobs import api_generate_job
from regurgitate.logs import job
from regurgitate.pipeline import generate_job

with job(snakemake.log[0], threads=snakemake.threads):
    name = snakemake.wildcards.generator
    generator = dict(snakemake.params.generator)
    if generator["backend"] == "local":
        generate_job(
            name=name,
            model_path=Path(snakemake.input.model),
            tokenizer_path=Path(snakemake.input.tokenizer),
            pool_path=Path(snakemake.input.pool),
            decoding=dict(snakemake.params.decoding),
            out=Path(snakemake.output.table),
            device=snakemake.params.device,
            precision=snakemake.params.precision,
            cost_out=Path(snakemake.output.cost),
        )
    else:
        api_generate_job(
            name=name,
            generator=generator,
            prompts=snakemake.params.prompts,
            pool_path=Path(snakemake.input.pool),
            out=Path(snakemake.output.table),
            cost_out=Path(snakemake.output.cost),
        )
