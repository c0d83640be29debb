# The corpus, its pools and the shared tokenizer.
from dataclasses import asdict
from pathlib import Path

from regurgitate.study.config import corpus_download, corpus_downloads
from regurgitate.study.corpus_files import (
    check_corpus_files,
    local_corpus_files,
    record_contents,
)
from regurgitate.study.vocabulary import POOLS

CORPUS = config["corpus"]
# The corpus files prepare_pools reads: a Europarl archive, a multi30k corpus's downloaded
# <split>.<de|en>.gz files, or local TSV files (inputs too, so that a changed file reruns it).
MULTI30K_DIR = "resources/corpus/multi30k"
EUROPARL_ARCHIVE = "resources/corpus/europarl-v7.tgz"
CORPUS_FILES = {
    "archive": EUROPARL_ARCHIVE if CORPUS["format"] == "europarl" else [],
    "parallel": [f"{MULTI30K_DIR}/{name}" for name in corpus_downloads(CORPUS)],
    "files": (
        []
        if CORPUS["format"] == "multi30k"
        else [path for path in (CORPUS.get("tsv"), CORPUS.get("test_tsv")) if path]
    ),
}
# Snakemake compares modification times only: a corpus file replaced by another with an older
# time would keep the old pools. The SHA-256 of each local corpus file is written here when it
# changes, and the pools depend on that record (the sizes and times that spare rehashing are
# this machine's, so they stay out of results/). A FIFO or folder is refused before it is read.
check_corpus_files(CORPUS)
CORPUS_RECORD = "results/pools/corpus.sha256.json"
if local_corpus_files(CORPUS):
    record_contents(
        CORPUS, Path(CORPUS_RECORD), Path(".snakemake/regurgitate/corpus.stat.json")
    )
    CORPUS_FILES["record"] = CORPUS_RECORD


# Downloads run where Snakemake runs: cluster nodes often have no way out.
localrules:
    download_corpus,
    download_corpus_file,


# download() tries a network failure again itself; a wrong checksum fails at once (no retries:
# the same bytes would come again).
rule download_corpus:
    output:
        EUROPARL_ARCHIVE,
    log:
        "logs/download_corpus.log",
    conda:
        ENV
    resources:
        runtime=120,
    params:
        url=CORPUS.get("url"),
        sha256=CORPUS.get("sha256"),
    script:
        "../scripts/download_corpus.py"


# corpus.format multi30k: each <split>.<de|en>.gz of the train and test splits, checksummed.
rule download_corpus_file:
    output:
        f"{MULTI30K_DIR}/{{file}}",
    log:
        "logs/download_corpus/{file}.log",
    wildcard_constraints:
        file=r"[A-Za-z0-9_][A-Za-z0-9_.-]*\.(de|en)\.gz",
    conda:
        ENV
    resources:
        runtime=30,
    params:
        url=lambda wildcards: corpus_download(CORPUS, wildcards.file)[0],
        sha256=lambda wildcards: corpus_download(CORPUS, wildcards.file)[1],
    script:
        "../scripts/download_corpus.py"


rule prepare_pools:
    input:
        **CORPUS_FILES,
    output:
        pools=expand("results/pools/{pool}.parquet", pool=POOLS),
        report="results/pools/cleaning.json",
    log:
        "logs/prepare_pools.log",
    conda:
        ENV
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        corpus=CORPUS,
        cleaning=config["cleaning"],
        sizes=config["pools"],
        seed=config["seed"],
    script:
        "../scripts/prepare_pools.py"


# Right after the pools and the tokenizer: the sizes the config asks of `null` pools and the
# pairs each architecture would cut. A local rule: it takes seconds.
rule check_pools:
    input:
        report="results/pools/cleaning.json",
        pools=expand("results/pools/{pool}.parquet", pool=POOLS),
        tokenizer="results/tokenizer/spm.model",
    output:
        "results/pools/checks.json",
    log:
        "logs/check_pools.log",
    localrule: True
    conda:
        ENV
    params:
        demands=[asdict(demand) for demand in POOL_DEMANDS],
        null_pools=null_pools(config),
        max_positions={
            name: architecture["max_positions"]
            for name, architecture in config["architectures"].items()
        },
    script:
        "../scripts/check_pools.py"


rule train_tokenizer:
    input:
        "results/pools/teacher.parquet",
    output:
        model="results/tokenizer/spm.model",
        vocab="results/tokenizer/spm.vocab",
    log:
        "logs/train_tokenizer.log",
    benchmark:
        "benchmarks/results/train_tokenizer.tsv"
    conda:
        ENV
    # SentencePiece always runs regurgitate.engine.tokenizer.TRAIN_THREADS threads (its scores
    # depend on the count), whatever --cores grants.
    threads: 2
    resources:
        mem_mb=lambda wildcards: footprint.memory_mb(SCALE.tokenizer_training()),
        runtime=60,
    params:
        settings=config["tokenizer"],
        seed=config["seed"],
    script:
        "../scripts/train_tokenizer.py"
