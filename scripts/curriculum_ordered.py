import polars as pl

from regurgitate.conditions import ordered_curriculum
from regurgitate.io import write_parquet
from regurgitate.logs import job

with job(snakemake.log[0]) as log:
    metric = snakemake.wildcards.metric
    scores = pl.read_parquet(snakemake.input.scores)
    if metric not in scores.columns:
        raise ValueError(f"{snakemake.input.scores} has no {metric!r} scores (mitigations.metrics)")
    curriculum = ordered_curriculum(
        pl.read_parquet(snakemake.input.student),
        pl.read_parquet(snakemake.input.synthetic),
        snakemake.wildcards.generator,
        scores.select("id", pl.col(metric).alias("score")),
        snakemake.params.seed,
    )
    log.info("%d pairs ordered by %s, best first", curriculum.height, metric)
    write_parquet(curriculum, snakemake.output[0])
