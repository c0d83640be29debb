from pathlib import Path

from regurgitate.jobs.figures import figure_partial
from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    titles = dict(snakemake.params.titles)
    figure_partial(
        summary_paths={experiment: snakemake.input[experiment] for experiment in titles},
        table_path=Path(snakemake.input.table),
        titles=titles,
        png=Path(snakemake.output.png),
        pdf=Path(snakemake.output.pdf),
    )
