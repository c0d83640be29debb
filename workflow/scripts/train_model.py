from pathlib import Path

from regurgitate.jobs.log import job
from regurgitate.jobs.train import train_model

with job(snakemake.log[0], threads=snakemake.threads):
    init = snakemake.input.get("init")  # E1 students start from the base model
    train_model(
        pairs_path=Path(snakemake.input.pairs),
        rows=snakemake.params.rows,
        dev_path=Path(snakemake.input.dev),
        tokenizer_path=Path(snakemake.input.tokenizer),
        architecture=dict(snakemake.params.architecture),
        training=dict(snakemake.params.training),
        checkpoint=Path(snakemake.params.checkpoint),
        model_out=Path(snakemake.output.model),
        summary_out=Path(snakemake.output.summary),
        device=snakemake.params.device,
        init_model=Path(init) if init else None,
    )
