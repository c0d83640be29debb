import polars as pl

from regurgitate.conditions import generated_curriculum
from regurgitate.io import write_parquet
from regurgitate.logs import job

with job(snakemake.log[0]) as log:
    generator = snakemake.params.generator
    curriculum = generated_curriculum(
        pl.read_parquet(snakemake.input.student),
        pl.read_parquet(snakemake.input.synthetic),
        generator,
        snakemake.params.seed,
    )
    log.info("%d pairs with targets by generator %s", curriculum.height, generator)
    write_parquet(curriculum, snakemake.output[0])
