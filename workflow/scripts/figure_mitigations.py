from pathlib import Path

from regurgitate.jobs.figures import figure_mitigations
from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    figure_mitigations(
        run_paths=list(snakemake.input.runs),
        table_path=Path(snakemake.input.table),
        unmitigated=dict(snakemake.params.unmitigated),
        curves_out=dict(snakemake.params.curves),
        gap_out={"png": snakemake.output.gap_png, "pdf": snakemake.output.gap_pdf},
    )
