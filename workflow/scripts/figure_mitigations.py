from pathlib import Path

from regurgitate.jobs.log import job
from regurgitate.jobs.mitigate import figure_mitigations

with job(snakemake.log[0]):
    figure_mitigations(
        list(snakemake.input.runs),
        Path(snakemake.input.table),
        dict(snakemake.params.unmitigated),
        dict(snakemake.params.curves),
        {"png": snakemake.output.gap_png, "pdf": snakemake.output.gap_pdf},
    )
