from pathlib import Path

from regurgitate.jobs.log import job
from regurgitate.jobs.mitigate import detector_scores

with job(snakemake.log[0]):
    detector_scores(
        detector_path=Path(snakemake.input.detector),
        synthetic_path=Path(snakemake.input.synthetic),
        out=Path(snakemake.output[0]),
    )
