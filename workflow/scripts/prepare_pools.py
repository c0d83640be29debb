from pathlib import Path

from regurgitate.jobs.data import prepare_pools
from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    prepare_pools(
        corpus=dict(snakemake.params.corpus),
        cleaning=dict(snakemake.params.cleaning),
        sizes=dict(snakemake.params.sizes),
        seed=snakemake.params.seed,
        out_dir=Path(snakemake.output.pools[0]).parent,
        report_path=Path(snakemake.output.report),
        archive=Path(snakemake.input.archive) if snakemake.input.archive else None,
        parallel=[Path(path) for path in snakemake.input.parallel],
    )
