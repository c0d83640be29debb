import polars as pl

from regurgitate.figures import learning_curves
from regurgitate.logs import job

with job(snakemake.log[0]):
    learning_curves(
        pl.read_csv(snakemake.input[0]),
        snakemake.output.png,
        snakemake.output.pdf,
        title=snakemake.params.title,
    )
