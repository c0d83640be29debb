from pathlib import Path

from regurgitate.logs import job
from regurgitate.scoring import nll_job

with job(snakemake.log[0], threads=snakemake.threads):
    nll_job(
        Path(snakemake.input.model),
        Path(snakemake.input.tokenizer),
        Path(snakemake.input.pairs),
        Path(snakemake.output[0]),
        reverse=snakemake.wildcards.direction == "reverse",
        device=snakemake.params.device,
        precision=snakemake.params.precision,
    )
