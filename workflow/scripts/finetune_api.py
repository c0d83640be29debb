from pathlib import Path

from regurgitate.jobs.log import job
from regurgitate.jobs.train import finetune_api

with job(snakemake.log[0]):
    finetune_api(
        curriculum_path=Path(snakemake.input.pairs),
        rows=snakemake.params.rows,
        name=snakemake.params.base,
        generator=dict(snakemake.params.generator),
        prompts=snakemake.params.prompts,
        seed=snakemake.params.seed,
        state_path=Path(snakemake.params.state),
        record_out=Path(snakemake.output[0]),
        hyperparameters=dict(snakemake.params.hyperparameters),
        poll_seconds=snakemake.params.poll_seconds,
    )
