from pathlib import Path

from regurgitate.jobs.curricula import curriculum_recursion
from regurgitate.jobs.log import job

with job(snakemake.log[0]):
    real, human = snakemake.input.get("real"), snakemake.input.get("human")
    curriculum_recursion(
        regime=snakemake.wildcards.regime,
        generation=int(snakemake.wildcards.generation),
        size=int(snakemake.wildcards.size),
        out=Path(snakemake.output[0]),
        real_path=Path(real) if real else None,
        human_path=Path(human) if human else None,
        translation_paths=dict(
            zip(snakemake.params.parents, snakemake.input.get("translations", []), strict=True)
        ),
        seed=snakemake.params.seed,
        real_share=snakemake.params.real_share,
    )
