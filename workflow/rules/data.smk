# The corpus, its pools and the shared tokenizer.


# Downloads run where Snakemake runs: cluster nodes often have no way out.
localrules:
    download_corpus,
    download_corpus_file,


# download() tries a network failure again itself; a wrong checksum fails at once (no retries:
# the same bytes would come again).
rule download_corpus:
    output:
        "resources/corpus/europarl-v7.tgz",
    log:
        "logs/download_corpus.log",
    conda:
        ENV
    resources:
        runtime=120,
    params:
        url=config["corpus"].get("url"),
        sha256=config["corpus"].get("sha256"),
    script:
        "../scripts/download_corpus.py"


# corpus.format multi30k: each <split>.<de|en>.gz of the train and test splits, checksummed.
rule download_corpus_file:
    output:
        "resources/corpus/multi30k/{file}",
    log:
        "logs/download_corpus/{file}.log",
    wildcard_constraints:
        file=r"[A-Za-z0-9_][A-Za-z0-9_.-]*\.(de|en)\.gz",
    conda:
        ENV
    resources:
        runtime=30,
    params:
        url=corpus_file_url,
        sha256=corpus_file_sha256,
    script:
        "../scripts/download_corpus.py"


rule prepare_pools:
    input:
        archive=corpus_archive,
        parallel=corpus_parallel_files,
        files=corpus_files,
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
        corpus=config["corpus"],
        cleaning=config["cleaning"],
        sizes=config["pools"],
        seed=config["seed"],
    script:
        "../scripts/prepare_pools.py"


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
        mem_mb=mem_mb_of(tokenizer_scale),
        runtime=60,
    params:
        settings=config["tokenizer"],
        seed=config["seed"],
    script:
        "../scripts/train_tokenizer.py"
