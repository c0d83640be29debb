import polars as pl

from regurgitate.conditions import mixed_curriculum
from regurgitate.io import write_parquet
from regurgitate.logs import job

with job(snakemake.log[0]) as log:
    synthetics = {g: pl.read_parquet(snakemake.input[g]) for g in snakemake.params.generators}
    curriculum = mixed_curriculum(
        pl.read_parquet(snakemake.input.student), synthetics, snakemake.params.seed
    )
    log.info("shares: %s", dict(curriculum["origin"].value_counts().iter_rows()))
    write_parquet(curriculum, snakemake.output[0])
