from pathlib import Path

from regurgitate.jobs.log import job
from regurgitate.jobs.mitigate import reverse_pairs

with job(snakemake.log[0]):
    reverse_pairs(pairs_path=Path(snakemake.input[0]), out=Path(snakemake.output[0]))
