from pathlib import Path

from regurgitate.logs import job
from regurgitate.mitigation_jobs import quality_job

with job(snakemake.log[0]):
    inputs = {
        name: snakemake.input.get(name)
        for name in ("others", "back_translations", "forward_nll", "reverse_nll")
        if snakemake.input.get(name)
    }
    quality_job(
        Path(snakemake.input.student),
        Path(snakemake.input.synthetic),
        snakemake.wildcards.generator,
        list(snakemake.params.metrics),
        {name: list(v) if name == "others" else v for name, v in inputs.items()},
        Path(snakemake.output.scores),
        Path(snakemake.output.correlation),
    )
