from pathlib import Path

from regurgitate.jobs.analyze import figure_partial
from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    titles = dict(snakemake.params.titles)
    figure_partial(
        {experiment: snakemake.input[experiment] for experiment in titles},
        Path(snakemake.input.table),
        titles,
        Path(snakemake.output.png),
        Path(snakemake.output.pdf),
    )
