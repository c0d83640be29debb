from pathlib import Path

from regurgitate.logs import job
from regurgitate.reports import partial_figure_job

with job(snakemake.log[0]):
    titles = dict(snakemake.params.titles)
    partial_figure_job(
        {experiment: snakemake.input[experiment] for experiment in titles},
        Path(snakemake.input.table),
        titles,
        Path(snakemake.output.png),
        Path(snakemake.output.pdf),
    )
