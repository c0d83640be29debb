from pathlib import Path

from regurgitate.logs import job
from regurgitate.mitigation_jobs import mitigations_table_job

with job(snakemake.log[0]):
    mixes = {Path(path).stem: path for path in snakemake.input.mixes}
    mitigations_table_job(
        list(snakemake.input.runs),
        dict(snakemake.params.unmitigated),
        mixes,
        snakemake.params.min_gap,
        Path(snakemake.output[0]),
    )
