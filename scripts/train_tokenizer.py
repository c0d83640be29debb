from regurgitate.logs import job
from regurgitate.pipeline import tokenizer_job

with job(snakemake.log[0]):
    tokenizer_job(
        snakemake.input[0],
        snakemake.output.model,
        dict(snakemake.params.settings),
        snakemake.params.seed,
        snakemake.threads,
    )
