from pathlib import Path

from regurgitate.jobs.log import job
from regurgitate.jobs.report import table_experiment

with job(snakemake.log[0]):
    table_experiment(
        list(snakemake.input.metrics),
        list(snakemake.input.hypotheses),
        Path(snakemake.input.test),
        Path(snakemake.output[0]),
        seed=snakemake.params.seed,
        base_path=Path(snakemake.input.base) if snakemake.input.get("base") else None,
    )
