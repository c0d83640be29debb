from pathlib import Path

from regurgitate.jobs.log import job
from regurgitate.jobs.recursion import figure_recursion

with job(snakemake.log[0]):
    figure_recursion(
        Path(snakemake.input[0]),
        Path(snakemake.output.png),
        Path(snakemake.output.pdf),
        snakemake.params.title,
    )
