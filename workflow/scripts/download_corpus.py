from regurgitate.jobs.data import download_corpus
from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    download_corpus(snakemake.params.url, snakemake.output[0], snakemake.params.sha256)
