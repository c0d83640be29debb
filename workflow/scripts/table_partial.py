from pathlib import Path

from regurgitate.jobs.analyze import table_partial
from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    table_partial(
        run_paths=list(snakemake.input.metrics),
        hypothesis_paths=list(snakemake.input.hypotheses),
        test_path=Path(snakemake.input.test),
        specs=dict(snakemake.params.specs),
        out=Path(snakemake.output[0]),
        seed=snakemake.params.seed,
        generators_table=Path(snakemake.input.generators),
    )
