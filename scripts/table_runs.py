from regurgitate.aggregate import load_runs, summarise, write_table
from regurgitate.logs import job

with job(snakemake.log[0]) as log:
    summary = summarise(load_runs(list(snakemake.input)))
    log.info("%d runs summarised into %d rows", len(snakemake.input), summary.height)
    write_table(summary, snakemake.output[0])
