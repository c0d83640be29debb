from regurgitate.jobs.data import download_corpus
from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    download_corpus(
        url=snakemake.params.url, out=snakemake.output[0], sha256=snakemake.params.sha256
    )
