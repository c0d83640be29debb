from pathlib import Path

from regurgitate.jobs.log import job
from regurgitate.jobs.report import table_experiment

with job(snakemake.log[0]):
    table_experiment(
        run_paths=list(snakemake.input.metrics),
        hypothesis_paths=list(snakemake.input.hypotheses),
        test_path=Path(snakemake.input.test),
        out=Path(snakemake.output[0]),
        seed=snakemake.params.seed,
        generator_metric_paths=list(snakemake.input.generators),
        self_generator=snakemake.params.self_generator,
        base_path=Path(snakemake.input.base) if snakemake.input.get("base") else None,
    )
