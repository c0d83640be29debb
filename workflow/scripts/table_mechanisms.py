from pathlib import Path

from regurgitate.jobs.analyze import table_mechanisms
from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    table_mechanisms(
        record_paths=list(snakemake.input.records),
        run_paths=list(snakemake.input.runs),
        generator_metric_paths=list(snakemake.input.generators),
        losses=dict(snakemake.params.losses),
        out=Path(snakemake.output[0]),
    )
