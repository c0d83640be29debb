from pathlib import Path

from regurgitate.jobs.log import job
from regurgitate.jobs.mitigate import detector_scores

with job(snakemake.log[0]):
    detector_scores(
        Path(snakemake.input.detector), Path(snakemake.input.synthetic), Path(snakemake.output[0])
    )
