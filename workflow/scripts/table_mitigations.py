from pathlib import Path

from regurgitate.jobs.log import job
from regurgitate.jobs.mitigate import table_mitigations

with job(snakemake.log[0]):
    table_mitigations(
        list(snakemake.input.runs),
        dict(snakemake.params.unmitigated),
        {Path(path).stem: path for path in snakemake.input.mixes},
        snakemake.params.min_gap,
        Path(snakemake.output[0]),
        experiment_tables=list(snakemake.input.experiment_tables),
    )
