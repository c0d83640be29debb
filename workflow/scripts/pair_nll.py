from pathlib import Path

from regurgitate.jobs.log import job
from regurgitate.jobs.mitigate import pair_nll

with job(snakemake.log[0], threads=snakemake.threads):
    pair_nll(
        Path(snakemake.input.model),
        Path(snakemake.input.tokenizer),
        Path(snakemake.input.pairs),
        Path(snakemake.output[0]),
        reverse=snakemake.wildcards.direction == "reverse",
        device=snakemake.params.device,
        precision=snakemake.params.precision,
    )
