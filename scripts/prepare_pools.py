from pathlib import Path

from regurgitate.corpus import CleaningConfig, prepare
from regurgitate.logs import job

with job(snakemake.log[0]):
    prepare(
        corpus=dict(snakemake.params.corpus),
        cleaning=CleaningConfig(**snakemake.params.cleaning),
        sizes=dict(snakemake.params.sizes),
        seed=snakemake.params.seed,
        out_dir=Path(snakemake.output.pools[0]).parent,
        report_path=Path(snakemake.output.report),
        archive=Path(snakemake.input.archive) if snakemake.input.archive else None,
    )
