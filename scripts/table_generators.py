from regurgitate.aggregate import generator_table
from regurgitate.logs import job

with job(snakemake.log[0]):
    generator_table(list(snakemake.input), snakemake.output[0])
