from pathlib import Path

from regurgitate.jobs.log import job
from regurgitate.jobs.mitigate import table_mitigations

with job(snakemake.log[0]):
    table_mitigations(
        run_paths=list(snakemake.input.runs),
        unmitigated=dict(snakemake.params.unmitigated),
        mix_mechanisms={Path(path).stem: path for path in snakemake.input.mixes},
        min_gap=snakemake.params.min_gap,
        out=Path(snakemake.output[0]),
        generators_table=Path(snakemake.input.generators),
        experiment_tables=list(snakemake.input.experiment_tables),
    )
