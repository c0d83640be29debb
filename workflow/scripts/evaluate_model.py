from pathlib import Path

from regurgitate.jobs.evaluate import evaluate_model
from regurgitate.jobs.log import job

with job(snakemake.log[0], threads=snakemake.threads):
    evaluate_model(
        model_path=Path(snakemake.input.model),
        tokenizer_path=Path(snakemake.input.tokenizer),
        test_path=Path(snakemake.input.test),
        decoding=dict(snakemake.params.decoding),
        labels=dict(snakemake.params.labels),
        metrics_out=Path(snakemake.output.metrics),
        hypotheses_out=Path(snakemake.output.hypotheses),
        device=snakemake.params.device,
        precision=snakemake.params.precision,
    )
