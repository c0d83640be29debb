"""Config and corpus mistakes that once ran a silent wrong study, failed at the end of a long
run, or failed with a raw traceback: each is refused before the first job (or right after the
pools are made, where it depends on the corpus), naming the key or the file and line."""

import copy
import os
import time

import polars as pl
import pytest
import yaml
from conftest import REPO, TINY, run_snakemake, write_toy_corpus

from regurgitate.engine.batching import encode_pairs
from regurgitate.io import write_json, write_parquet
from regurgitate.jobs.data import check_pools, train_tokenizer
from regurgitate.study.config import ConfigError, check_config, pool_demands
from regurgitate.study.config_file import (
    check_types,
    merge_config,
    parse_overrides,
    read_config_file,
    read_schema,
)
from regurgitate.study.corpus import CorpusError, read_tsv
from regurgitate.study.corpus_files import check_corpus_files, record_contents

SCHEMA = read_schema(REPO / "workflow" / "schemas" / "config.schema.yaml")


def tiny():
    return yaml.safe_load(TINY.read_text())


def validated(config):
    from snakemake.utils import validate

    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    return config


def refused(config, match):
    with pytest.raises(ConfigError, match=match):
        check_types(config, SCHEMA)
        check_config(validated(config))


# --- 3, 4: names and mixes ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["real", "self", "human"])
def test_a_generator_cannot_take_a_name_the_study_uses(name):
    config = tiny()
    config["generators"][name] = config["generators"].pop("weak")
    config["finetune"]["partial"]["generators"] = [name]
    config["mitigations"].update(generators=[name], mixes=[[name, "strong"]])
    refused(config, rf"generators\.{name}: the name is reserved")


@pytest.mark.parametrize(
    "mixes", [[["weak", "strong"]] * 2, [["weak", "strong"], ["strong", "weak"]]]
)
def test_a_mix_listed_twice_is_refused(mixes):
    config = tiny()
    config["mitigations"]["mixes"] = mixes
    refused(config, r"mitigations\.mixes\[1\]: .* mixes the same generators as .*mixes\[0\]")


def test_a_name_with_a_trailing_newline_is_refused():
    config = tiny()
    config["generators"]["weak\n"] = config["generators"].pop("weak")
    with pytest.raises(ConfigError, match=r"generators: .*does not match"):
        check_types(config, SCHEMA)


# --- 5: sizes against pools ---------------------------------------------------------------------


def test_two_pools_that_take_what_is_left_are_refused_at_config_time():
    config = tiny()
    config["pools"].update(student=None, teacher=None)
    refused(config, r"pools: student and teacher are both null")


def test_teacher_pairs_beyond_a_fixed_teacher_pool_are_refused_at_config_time():
    config = tiny()
    config["pools"].update(teacher=200, student=None)
    refused(config, r"generators\.weak\.teacher_pairs: 300 pairs exceed pools\.teacher=200")


@pytest.fixture(scope="module")
def made_pools(tmp_path_factory, toy_pairs):
    """Pools as prepare_pools writes them, with a tokenizer trained on the teacher pool: 300
    teacher and 240 student pairs."""
    root = tmp_path_factory.mktemp("pools")
    sizes = {"teacher": 300, "student": 240, "detector": 20, "dev": 20, "test": 20}
    start, paths = 0, []
    for pool, size in sizes.items():
        pairs = toy_pairs[start : start + size]
        start += size
        frame = pl.DataFrame({"source": [s for s, _ in pairs], "target": [t for _, t in pairs]})
        paths.append(root / f"{pool}.parquet")
        write_parquet(frame, paths[-1])
    write_json({"pools": sizes}, root / "cleaning.json")
    tokenizer = root / "spm.model"
    train_tokenizer(
        teacher_path=root / "teacher.parquet",
        model_out=tokenizer,
        settings={"vocab_size": 80, "model_type": "unigram", "max_sentences": 10000},
        seed=1,
    )
    return root, paths, tokenizer


def check_made_pools(made_pools, config, max_positions=None):
    """check_pools on the made pools; experiment sizes within the 240 student pairs unless
    the test chose them."""
    root, paths, tokenizer = made_pools
    for experiment in ("scratch", "finetune"):
        if max(config[experiment]["sizes"]) > 240:
            config[experiment]["sizes"] = [100, 200]
    return check_pools(
        report_path=root / "cleaning.json",
        pool_paths=paths,
        tokenizer_path=tokenizer,
        demands=[vars(demand) for demand in pool_demands(config)],
        null_pools=[pool for pool, size in config["pools"].items() if size is None],
        max_positions=max_positions or {"tiny": 256},
        out=root / "checks.json",
    )


def test_mitigations_at_the_size_a_null_student_pool_turned_out_to_have_are_refused(made_pools):
    config = tiny()
    config["pools"].update(student=None, teacher=1000)
    config["scratch"]["sizes"] = config["finetune"]["sizes"] = [100, 240]
    config["mitigations"]["sizes"] = [240]
    check_config(validated(config))  # the pool's size is unknown until the corpus is read
    with pytest.raises(ConfigError, match=r"mitigations\.sizes: S1 and S3 order the student"):
        check_made_pools(made_pools, config)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda c: c["generators"]["weak"].update(teacher_pairs=8000),
            r"generators\.weak\.teacher_pairs: 8000 pairs exceed pools\.teacher=300 as the "
            r"corpus filled it",
        ),
        (lambda c: c["finetune"]["partial"].update(sizes=[500]), r"finetune\.partial\.sizes: 500"),
        (lambda c: c["recursion"].update(sizes=[400]), r"recursion\.sizes: 400 pairs exceed"),
    ],
)
def test_sizes_beyond_null_pools_are_refused_right_after_the_pools(made_pools, mutate, message):
    config = tiny()
    null = "teacher" if "teacher" in message else "student"
    config["pools"].update(student=300, teacher=10000, detector=20)
    config["pools"][null] = None
    config["mitigations"]["sizes"] = [100]
    mutate(config)
    with pytest.raises(ConfigError, match=message):
        check_made_pools(made_pools, config)


def test_pools_that_meet_every_demand_pass_and_record_their_counts(made_pools):
    config = tiny()
    config["pools"].update(student=None, teacher=1000)
    counts = check_made_pools(made_pools, config)
    assert counts["teacher"] == {"tiny": 0}
    assert (made_pools[0] / "checks.json").exists()


# --- 2: truncation ------------------------------------------------------------------------------


def test_encoding_counts_the_pairs_it_cuts(toy_tokenizer, toy_pairs):
    sources, targets = [s for s, _ in toy_pairs], [t for _, t in toy_pairs]
    longest = max(len(ids) for ids in toy_tokenizer.encode(sources + targets))
    assert encode_pairs(toy_tokenizer, sources, targets, longest + 1).truncated == 0
    data = encode_pairs(toy_tokenizer, sources, targets, 8)
    expected = sum(
        max(len(s), len(t)) > 7
        for s, t in zip(toy_tokenizer.encode(sources), toy_tokenizer.encode(targets), strict=True)
    )
    assert data.truncated == expected > 0


def test_a_pool_whose_pairs_an_architecture_would_cut_is_refused(made_pools):
    config = tiny()
    with pytest.raises(
        ConfigError,
        match=r"architectures\.tiny\.max_positions: \d+ of the 300 pairs of the teacher pool "
        r"\(.*%\) are longer than its 7 tokens .* set max_positions to at least \d+",
    ):
        check_made_pools(made_pools, config, {"tiny": 8})


# --- 6: values that used to end in a raw traceback ----------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda c: c["scratch"].update(sizes=[100.0]),
            r"scratch\.sizes\[0\]: 100\.0 is not a whole",
        ),
        (lambda c: c.update(seed=1.0), r"seed: 1\.0 is not a whole number as written; write 1"),
        (
            lambda c: c["generators"]["weak"].update(teacher_pairs=300.0),
            r"generators\.weak\.teacher_pairs: 300\.0 is not a whole",
        ),
        (lambda c: c.update(seed=2**32), r"seed: 4294967296 is greater than the maximum"),
        (lambda c: c["scratch"].update(seeds=[1, 2**40]), r"scratch\.seeds\[1\]: .* maximum"),
    ],
)
def test_values_the_schema_let_through_are_refused_with_their_key(mutate, message):
    config = tiny()
    mutate(config)
    with pytest.raises(ConfigError, match=message):
        check_types(config, SCHEMA)


def test_heads_that_do_not_divide_d_model_are_refused():
    config = tiny()
    config["architectures"]["tiny"]["heads"] = 3
    refused(config, r"architectures\.tiny\.heads: d_model=32 does not split into 3 heads")


def test_min_words_above_max_words_names_the_cleaning_key():
    config = tiny()
    config["cleaning"].update(min_words=50, max_words=40)
    refused(config, r"cleaning\.min_words: 50 is more than cleaning\.max_words=40")


def test_a_vocabulary_the_teacher_pool_cannot_fill_names_the_key(made_pools, tmp_path):
    root, _, _ = made_pools
    with pytest.raises(ConfigError, match=r"tokenizer\.vocab_size: 5000 pieces, .* at most \d+"):
        train_tokenizer(
            teacher_path=root / "teacher.parquet",
            model_out=tmp_path / "spm.model",
            settings={"vocab_size": 5000, "model_type": "unigram", "max_sentences": 10000},
            seed=1,
        )
    assert not (tmp_path / "spm.model").exists()


def test_nested_config_values_are_read_as_yaml():
    overrides = parse_overrides(
        ["corpus={format: tsv, tsv: data/c.tsv, test_tsv: null}", "scratch={sizes: [100]}"]
    )
    assert overrides == {
        "corpus": {"format": "tsv", "tsv": "data/c.tsv", "test_tsv": None},
        "scratch": {"sizes": [100]},
    }
    config = tiny()
    merge_config(config, overrides)
    assert config["corpus"]["test_tsv"] is None
    assert config["scratch"] == {"architecture": "small", "sizes": [100], "seeds": [1, 2]}


def test_a_tab_used_for_indentation_names_the_line(tmp_path):
    text = TINY.read_text().replace("    d_model: 32\n", "\t  d_model: 32\n", 1)
    path = tmp_path / "tab.yaml"
    path.write_text(text)
    line = text.splitlines().index("\t  d_model: 32") + 1
    with pytest.raises(ConfigError, match=rf"tab\.yaml, line {line}: a tab character"):
        read_config_file(path)


# --- 7: inputs trusted without a word -----------------------------------------------------------


def test_a_key_given_twice_names_both_lines(tmp_path):
    text = TINY.read_text().replace("  test: 100\n", "  test: 100\n  test: 90\n", 1)
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    first = text.splitlines().index("  test: 100") + 1
    with pytest.raises(
        ConfigError,
        match=rf"line {first + 1}: the key 'test' appears twice .*first on line {first}",
    ):
        read_config_file(path)


def test_a_header_line_is_not_read_as_a_pair(tmp_path):
    path = tmp_path / "corpus.tsv"
    path.write_text("de\ten\nein Haus\ta house\n")
    with pytest.raises(CorpusError, match=r"corpus\.tsv:1: 'de\\ten' looks like a column header"):
        list(read_tsv(path))
    path.write_text("Haus\thouse\n")
    assert list(read_tsv(path)) == [(1, "Haus", "house")]


def test_a_fifo_as_corpus_is_refused_before_it_is_read(tmp_path):
    fifo = tmp_path / "corpus.tsv"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match=r"corpus\.tsv: .* is a FIFO"):
        check_corpus_files({"format": "tsv", "tsv": str(fifo), "test_tsv": None})


def test_a_corpus_replaced_by_an_older_file_is_recorded_as_changed(tmp_path):
    corpus = tmp_path / "corpus.tsv"
    corpus.write_text("Haus\thouse\n")
    settings = {"format": "tsv", "tsv": str(corpus), "test_tsv": None}
    record, cache = tmp_path / "record.json", tmp_path / "cache.json"
    record_contents(settings, record, cache)
    before = record.stat().st_mtime_ns
    time.sleep(0.01)
    record_contents(settings, record, cache)
    assert record.stat().st_mtime_ns == before  # unchanged content: the pools stay
    corpus.write_text("Baum\ttree\n")
    os.utime(corpus, ns=(1, 1))  # older than anything Snakemake made
    record_contents(settings, record, cache)
    assert record.stat().st_mtime_ns > before


# --- the workflow: each refusal comes before any job --------------------------------------------


@pytest.fixture
def study(tmp_path):
    write_toy_corpus(tmp_path / "data" / "corpus.tsv", 1500)
    return tmp_path


def write_config(study, config):
    path = study / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.mark.slow
def test_the_workflow_refuses_each_mistake_before_any_job(study):
    config = tiny()
    config["pools"]["detector"] = 50.0
    result = run_snakemake(study, write_config(study, config), "-n", check=False)
    assert result.returncode != 0
    assert "pools.detector: 50.0 is not a whole number" in result.stdout + result.stderr

    duplicated = TINY.read_text().replace("  test: 100\n", "  test: 100\n  test: 90\n", 1)
    (study / "dup.yaml").write_text(duplicated)
    result = run_snakemake(study, study / "dup.yaml", "-n", check=False)
    assert "the key 'test' appears twice" in result.stdout + result.stderr

    nested = "scratch={architecture: small, sizes: [100], seeds: [1]}"
    run_snakemake(study, TINY, "-n", "--config", nested)


@pytest.mark.slow
def test_sizes_beyond_what_the_corpus_gave_are_refused_after_the_pools(study):
    """On a first run the check_pools job stops the study before any model trains; once the
    pools exist, the dry run itself refuses."""
    config = tiny()
    config["generators"]["weak"]["teacher_pairs"] = 5000
    path = write_config(study, config)
    result = run_snakemake(study, path, "--cores", "2", "results/pools/checks.json", check=False)
    assert result.returncode != 0
    log = (study / "logs" / "check_pools.log").read_text()
    assert "generators.weak.teacher_pairs: 5000 pairs exceed pools.teacher=" in log
    assert not (study / "results" / "pools" / "checks.json").exists()
    result = run_snakemake(study, path, "-n", check=False)
    assert result.returncode != 0
    assert "generators.weak.teacher_pairs: 5000 pairs exceed" in result.stdout + result.stderr


@pytest.mark.slow
def test_a_corpus_replaced_by_an_older_file_makes_the_pools_again(study):
    run_snakemake(study, TINY, "--cores", "1", "results/pools/cleaning.json")
    corpus = study / "data" / "corpus.tsv"
    write_toy_corpus(corpus, 1400)
    os.utime(corpus, ns=(1, 1))
    result = run_snakemake(study, TINY, "-n", "results/pools/cleaning.json")
    assert "prepare_pools" in result.stdout


def test_the_shipped_configs_have_no_duplicate_keys_or_tabs():
    for path in [*sorted((REPO / "config").glob("*.yaml")), TINY]:
        config = read_config_file(path)
        check_types(copy.deepcopy(config), SCHEMA)


# --- a report asked for with another config than the run's -----------------------------------


def test_a_report_with_another_config_names_the_runs_options(tmp_path):
    from regurgitate.study.config_file import check_report_config, record_run

    record = tmp_path / "run.json"
    check_report_config(record, tiny())  # no run yet: nothing to compare with
    record_run(record, [tmp_path / "study.yaml"], ["seed=3"], tiny())
    check_report_config(record, tiny())  # the run's own config
    other = tiny()
    other["seed"] = 3
    with pytest.raises(ConfigError) as refused:
        check_report_config(record, other)
    assert str(refused.value).endswith(
        f"snakemake --report report.html --configfile {tmp_path / 'study.yaml'} --config 'seed=3'"
    )


@pytest.mark.slow
def test_a_report_without_the_runs_config_says_which_it_was(study):
    import subprocess
    import sys

    run_snakemake(study, TINY, "--cores", "1", "results/pools/cleaning.json")
    # the default config where a user runs: the repository's root
    (study / "config").mkdir()
    (study / "config" / "config.yaml").write_text((REPO / "config" / "config.yaml").read_text())
    snakefile = str(REPO / "workflow" / "Snakefile")
    command = [sys.executable, "-m", "snakemake", "-s", snakefile, "--report", "report.html"]
    result = subprocess.run(command, cwd=study, capture_output=True, text=True)
    assert result.returncode != 0
    assert f"snakemake --report report.html --configfile {TINY}" in result.stdout + result.stderr
