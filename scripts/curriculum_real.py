import polars as pl

from regurgitate.conditions import real_curriculum
from regurgitate.io import write_parquet
from regurgitate.logs import job

with job(snakemake.log[0]) as log:
    curriculum = real_curriculum(pl.read_parquet(snakemake.input[0]), snakemake.params.seed)
    log.info("real: %d pairs with human targets", curriculum.height)
    write_parquet(curriculum, snakemake.output[0])
