from pathlib import Path

from regurgitate.jobs.detector import train_detector
from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    train_detector(
        pool_path=Path(snakemake.input.pool),
        synthetic_path=Path(snakemake.input.synthetic),
        generator=snakemake.wildcards.generator,
        held_out=snakemake.params.held_out,
        seed=snakemake.params.seed,
        model_out=Path(snakemake.output.model),
        metrics_out=Path(snakemake.output.metrics),
        regularisation=snakemake.params.regularisation,
    )
