from pathlib import Path

from regurgitate.logs import job
from regurgitate.mitigation_jobs import mitigation_figures_job

with job(snakemake.log[0]):
    mitigation_figures_job(
        list(snakemake.input.runs),
        Path(snakemake.input.table),
        dict(snakemake.params.unmitigated),
        dict(snakemake.params.curves),
        {"png": snakemake.output.gap_png, "pdf": snakemake.output.gap_pdf},
    )
