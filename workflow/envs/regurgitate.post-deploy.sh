#!/bin/sh
# Snakemake runs this inside the environment it has just created from regurgitate.yaml (its
# "post-deployment script", found by the name beside the environment file) and installs the
# package from the checkout whose workflow runs. Snakemake runs copies of both files from
# .snakemake/conda/ (or --conda-prefix), where no relative path leads back to the checkout, so
# rules/common.smk hands the checkout's path over in REGURGITATE_SOURCE.
set -eu
source="${REGURGITATE_SOURCE:?is unset: Snakemake sets it from the workflow it reads (rules/common.smk)}"
# Editable, so that rules run the checkout's library code as it is now; --no-deps, because
# regurgitate.yaml pins every dependency and pip must not replace them. The environment's own
# python, so that a failed activation cannot install into another one.
"${CONDA_PREFIX:?is unset: Snakemake runs this script inside the environment}/bin/python" \
    -m pip install --no-deps --editable "$source"
