from pathlib import Path

from regurgitate.jobs.detector import detector_scores
from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    detector_scores(
        detector_path=Path(snakemake.input.detector),
        synthetic_path=Path(snakemake.input.synthetic),
        out=Path(snakemake.output[0]),
    )
