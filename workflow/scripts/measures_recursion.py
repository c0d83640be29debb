from pathlib import Path

from regurgitate.jobs.log import job
from regurgitate.jobs.recursion import measures_recursion

with job(snakemake.log[0]):
    measures_recursion(
        human_path=Path(snakemake.input.human),
        synthetic_path=Path(snakemake.input.synthetic),
        student_path=Path(snakemake.input.student),
        sample_size_path=Path(snakemake.input.sample_size),
        labels=dict(snakemake.params.labels),
        settings=dict(snakemake.params.settings),
        seed=snakemake.params.seed,
        out=Path(snakemake.output[0]),
        with_human=snakemake.params.with_human,
    )
