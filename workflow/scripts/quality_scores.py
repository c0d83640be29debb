from pathlib import Path

from regurgitate.jobs.log import job
from regurgitate.jobs.mitigate import quality_scores

with job(snakemake.log[0]):
    inputs = {
        name: snakemake.input.get(name)
        for name in ("others", "back_translations", "forward_nll", "reverse_nll")
        if snakemake.input.get(name)
    }
    quality_scores(
        Path(snakemake.input.student),
        Path(snakemake.input.synthetic),
        snakemake.wildcards.generator,
        list(snakemake.params.metrics),
        {name: list(v) if name == "others" else v for name, v in inputs.items()},
        Path(snakemake.output.scores),
        Path(snakemake.output.correlation),
    )
