from pathlib import Path

from regurgitate.jobs.log import job
from regurgitate.jobs.open_weights import evaluate_open_weights

model = snakemake.input.get("model")  # a fine-tuned run's folder; none for a generator
summary = snakemake.input.get("summary")
with job(snakemake.log[0], threads=snakemake.threads):
    evaluate_open_weights(
        name=snakemake.params.name,
        generator=dict(snakemake.params.generator),
        prompts=snakemake.params.prompts,
        test_path=Path(snakemake.input.test),
        labels=dict(snakemake.params.labels),
        metrics_out=Path(snakemake.output.metrics),
        hypotheses_out=Path(snakemake.output.hypotheses),
        device=snakemake.params.device,
        weights=Path(model) if model else None,
        summary_path=Path(summary) if summary else None,
    )
