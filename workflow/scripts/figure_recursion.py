from pathlib import Path

from regurgitate.jobs.figures import figure_recursion
from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    figure_recursion(
        table_path=Path(snakemake.input[0]),
        png=Path(snakemake.output.png),
        pdf=Path(snakemake.output.pdf),
        title=snakemake.params.title,
    )
