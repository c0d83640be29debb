from pathlib import Path

from regurgitate.jobs.evaluate import evaluate_finetuned_api
from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    evaluate_finetuned_api(
        record_path=Path(snakemake.input.model),
        name=snakemake.params.base,
        generator=dict(snakemake.params.generator),
        prompts=snakemake.params.prompts,
        test_path=Path(snakemake.input.test),
        labels=dict(snakemake.params.labels),
        metrics_out=Path(snakemake.output.metrics),
        hypotheses_out=Path(snakemake.output.hypotheses),
    )
