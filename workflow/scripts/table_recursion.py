from pathlib import Path

from regurgitate.jobs.log import job
from regurgitate.jobs.recursion import table_recursion

with job(snakemake.log[0]):
    table_recursion(
        metric_paths=list(snakemake.input.metrics),
        hypothesis_paths=list(snakemake.input.hypotheses),
        measure_paths=list(snakemake.input.measures),
        test_path=Path(snakemake.input.test),
        seed=snakemake.params.seed,
        out=Path(snakemake.output[0]),
    )
