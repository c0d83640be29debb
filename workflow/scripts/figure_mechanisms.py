from pathlib import Path

from regurgitate.jobs.analyze import figure_mechanisms
from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    out = snakemake.output
    figure_mechanisms(
        Path(snakemake.input.table),
        list(snakemake.input.records),
        list(snakemake.params.experiments),
        {"png": out.mechanisms_png, "pdf": out.mechanisms_pdf},
        {"png": out.loss_png, "pdf": out.loss_pdf},
    )
