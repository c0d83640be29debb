from pathlib import Path

from regurgitate.logs import job
from regurgitate.reports import mechanisms_figures_job

with job(snakemake.log[0]):
    out = snakemake.output
    mechanisms_figures_job(
        Path(snakemake.input.table),
        list(snakemake.input.records),
        list(snakemake.params.experiments),
        {"png": out.mechanisms_png, "pdf": out.mechanisms_pdf},
        {"png": out.loss_png, "pdf": out.loss_pdf},
    )
