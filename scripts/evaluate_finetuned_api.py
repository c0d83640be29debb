import json
from pathlib import Path

from regurgitate.generators.openai_finetune import evaluate_finetuned
from regurgitate.logs import job

with job(snakemake.log[0]):
    evaluate_finetuned(
        record=json.loads(Path(snakemake.input.model).read_text(encoding="utf-8")),
        name=snakemake.params.base,
        generator=dict(snakemake.params.generator),
        prompts=snakemake.params.prompts,
        test_path=Path(snakemake.input.test),
        labels=dict(snakemake.params.labels),
        metrics_out=Path(snakemake.output.metrics),
        hypotheses_out=Path(snakemake.output.hypotheses),
    )
