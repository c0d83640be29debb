from pathlib import Path

from regurgitate.detector import p_human_job
from regurgitate.logs import job

with job(snakemake.log[0]):
    p_human_job(
        Path(snakemake.input.detector), Path(snakemake.input.synthetic), Path(snakemake.output[0])
    )
