from regurgitate.jobs.data import train_tokenizer
from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    train_tokenizer(
        snakemake.input[0],
        snakemake.output.model,
        dict(snakemake.params.settings),
        snakemake.params.seed,
    )
