from pathlib import Path

from regurgitate.generators.jobs import api_evaluate_job
from regurgitate.logs import job

with job(snakemake.log[0]):
    api_evaluate_job(
        name=snakemake.wildcards.generator,
        generator=dict(snakemake.params.generator),
        prompts=snakemake.params.prompts,
        test_path=Path(snakemake.input.test),
        labels=dict(snakemake.params.labels),
        metrics_out=Path(snakemake.output.metrics),
        hypotheses_out=Path(snakemake.output.hypotheses),
    )
