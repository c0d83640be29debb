from regurgitate.jobs.data import train_tokenizer
from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    train_tokenizer(
        teacher_path=snakemake.input[0],
        model_out=snakemake.output.model,
        settings=dict(snakemake.params.settings),
        seed=snakemake.params.seed,
    )
