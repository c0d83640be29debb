from pathlib import Path

from regurgitate.jobs.log import job
from regurgitate.jobs.open_weights import finetune_open_weights

with job(snakemake.log[0], threads=snakemake.threads):
    finetune_open_weights(
        curriculum_path=Path(snakemake.input.pairs),
        rows=snakemake.params.rows,
        dev_path=Path(snakemake.input.dev),
        name=snakemake.params.base,
        generator=dict(snakemake.params.generator),
        prompts=snakemake.params.prompts,
        training=dict(snakemake.params.training),
        method=dict(snakemake.params.method),
        checkpoint=Path(snakemake.params.checkpoint),
        model_out=Path(snakemake.output.model),
        summary_out=Path(snakemake.output.summary),
        device=snakemake.params.device,
    )
