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
        student_path=Path(snakemake.input.student),
        synthetic_path=Path(snakemake.input.synthetic),
        generator=snakemake.wildcards.generator,
        metrics=list(snakemake.params.metrics),
        inputs={name: list(v) if name == "others" else v for name, v in inputs.items()},
        scores_out=Path(snakemake.output.scores),
        correlation_out=Path(snakemake.output.correlation),
    )
