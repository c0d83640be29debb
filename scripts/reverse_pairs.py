from pathlib import Path

from regurgitate.logs import job
from regurgitate.mitigation_jobs import reverse_pairs_job

with job(snakemake.log[0]):
    reverse_pairs_job(Path(snakemake.input[0]), Path(snakemake.output[0]))
