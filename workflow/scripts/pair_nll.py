from pathlib import Path

from regurgitate.jobs.log import job
from regurgitate.jobs.quality_models import pair_nll

with job(snakemake.log[0], threads=snakemake.threads):
    pair_nll(
        model_path=Path(snakemake.input.model),
        tokenizer_path=Path(snakemake.input.tokenizer),
        pairs_path=Path(snakemake.input.pairs),
        out=Path(snakemake.output[0]),
        reverse=snakemake.wildcards.direction == "reverse",
        device=snakemake.params.device,
        precision=snakemake.params.precision,
    )
