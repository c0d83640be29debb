import polars as pl

from regurgitate.conditions import detector_curriculum
from regurgitate.io import write_parquet
from regurgitate.logs import job

with job(snakemake.log[0]) as log:
    curriculum = detector_curriculum(
        pl.read_parquet(snakemake.input.student),
        pl.read_parquet(snakemake.input.synthetic),
        snakemake.wildcards.generator,
        pl.read_parquet(snakemake.input.p_human),
        snakemake.params.seed,
    )
    log.info("%d pairs, most human-looking first", curriculum.height)
    write_parquet(curriculum, snakemake.output[0])
