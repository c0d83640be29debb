from regurgitate.jobs.data import check_pools
from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    check_pools(
        report_path=snakemake.input.report,
        pool_paths=list(snakemake.input.pools),
        tokenizer_path=snakemake.input.tokenizer,
        demands=[dict(demand) for demand in snakemake.params.demands],
        null_pools=list(snakemake.params.null_pools),
        max_positions=dict(snakemake.params.max_positions),
        out=snakemake.output[0],
    )
