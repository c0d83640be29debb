from regurgitate.download import download
from regurgitate.logs import job

with job(snakemake.log[0]):
    download(snakemake.params.url, snakemake.output[0], snakemake.params.sha256)
