import polars as pl

from regurgitate.conditions import partial_curriculum
from regurgitate.io import write_parquet
from regurgitate.logs import job

with job(snakemake.log[0]) as log:
    curriculum = partial_curriculum(
        pl.read_parquet(snakemake.input.student),
        pl.read_parquet(snakemake.input.synthetic),
        snakemake.params.generator,
        snakemake.params.percent,
        snakemake.params.seed,
    )
    human = curriculum.filter(pl.col("origin") == "human").height
    log.info("%d pairs, %d with human targets", curriculum.height, human)
    write_parquet(curriculum, snakemake.output[0])
