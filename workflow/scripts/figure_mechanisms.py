from pathlib import Path

from regurgitate.jobs.figures import figure_mechanisms
from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    out = snakemake.output
    figure_mechanisms(
        table_path=Path(snakemake.input.table),
        record_paths=list(snakemake.input.records),
        experiments=list(snakemake.params.experiments),
        mechanisms_out={"png": out.mechanisms_png, "pdf": out.mechanisms_pdf},
        loss_out={"png": out.loss_png, "pdf": out.loss_pdf},
    )
