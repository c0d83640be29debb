"""Reading, cleaning, splitting and preparing the corpus, on small files made here."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import polars as pl
import pytest

from regurgitate.study.corpus import (
    DROP_REASONS,
    POOLS,
    CleaningConfig,
    CorpusError,
    clean,
    normalise,
    prepare,
    read_europarl_archive,
    read_parallel,
    read_tsv,
    split_pools,
)

MULTI30K_TRAIN = Path(__file__).parents[1].parent / "shared/data/multi30k/train.tsv"

CFG = CleaningConfig(max_words=10, max_length_ratio=3.0)


def numbered(pairs: list[tuple[str, str]]) -> list[tuple[int, str, str]]:
    return [(i, de, en) for i, (de, en) in enumerate(pairs, start=1)]


def synthetic_pairs(n: int, prefix: str = "") -> list[tuple[str, str]]:
    return [(f"{prefix}Satz Nummer {i}", f"{prefix}sentence number {i}") for i in range(n)]


def write_tsv(path: Path, pairs: list[tuple[str, str]]) -> Path:
    path.write_text("".join(f"{de}\t{en}\n" for de, en in pairs), encoding="utf-8")
    return path


def write_archive(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def lines_bytes(lines: list[str]) -> bytes:
    return "".join(f"{line}\n" for line in lines).encode("utf-8")


# --- normalise --------------------------------------------------------------------------------


def test_normalise_composes_unicode():
    decomposed = "Bru\u0308cke"  # u + combining diaeresis
    composed = "Br\u00fccke"
    assert decomposed != composed
    assert normalise(decomposed) == composed
    assert normalise(composed) == composed


def test_normalise_collapses_whitespace():
    assert normalise("  Guten\u00a0\u00a0Tag,\t\tWelt \u2009 ! ") == "Guten Tag, Welt !"
    assert normalise(" \t\u00a0 ") == ""


# --- read_tsv ---------------------------------------------------------------------------------


def test_read_tsv_yields_line_numbers_and_strips_only_newlines(tmp_path):
    path = tmp_path / "c.tsv"
    path.write_bytes(b"Hallo \tHello \r\n\xc3\x9cber\tAbout\nEnde\tEnd")
    assert list(read_tsv(path)) == [
        (1, "Hallo ", "Hello "),
        (2, "\u00dcber", "About"),
        (3, "Ende", "End"),
    ]


def test_read_tsv_missing_file(tmp_path):
    path = tmp_path / "absent.tsv"
    with pytest.raises(CorpusError, match="absent.tsv"):
        list(read_tsv(path))


def test_read_tsv_line_without_tab(tmp_path):
    path = write_tsv(tmp_path / "c.tsv", [("a", "b")])
    with path.open("a", encoding="utf-8") as handle:
        handle.write("kein Tabulator hier\n")
    with pytest.raises(CorpusError, match=r"c\.tsv:2: no tab"):
        list(read_tsv(path))


def test_read_tsv_line_with_two_tabs(tmp_path):
    path = tmp_path / "c.tsv"
    path.write_text("a\tb\nx\ty\tz\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"c\.tsv:2: 2 tabs"):
        list(read_tsv(path))


def test_read_tsv_invalid_utf8(tmp_path):
    path = tmp_path / "latin1.tsv"
    path.write_bytes(b"a\tb\nc\td\nM\xfcnchen\tMunich\n")
    with pytest.raises(CorpusError, match="invalid UTF-8") as caught:
        list(read_tsv(path))
    assert f"{path}:3" in str(caught.value)


# --- read_europarl_archive ----------------------------------------------------------------------


@pytest.mark.parametrize("longer_side", ["de", "en"])
def test_read_parallel_different_lengths(tmp_path, longer_side):
    de = tmp_path / "c.de"
    en = tmp_path / "c.en"
    de.write_bytes(lines_bytes(["a", "b", "c"] if longer_side == "de" else ["a", "b"]))
    en.write_bytes(lines_bytes(["a", "b", "c"] if longer_side == "en" else ["a", "b"]))
    shorter, longer = (en, de) if longer_side == "de" else (de, en)
    with pytest.raises(CorpusError) as caught:
        list(read_parallel(de, en))
    assert str(caught.value) == (
        f"parallel files have different lengths: {shorter} has 2 lines, {longer} has more"
    )


def test_read_parallel_invalid_utf8(tmp_path):
    de = tmp_path / "c.de"
    en = tmp_path / "c.en"
    de.write_bytes(lines_bytes(["a", "b", "c"]))
    en.write_bytes(b"a\nb\n\xff\xfe\n")
    with pytest.raises(CorpusError, match=f"{en}:3: invalid UTF-8"):
        list(read_parallel(de, en))


def test_read_parallel_gzip(tmp_path):
    de = tmp_path / "train.de.gz"
    en = tmp_path / "train.en.gz"
    de.write_bytes(gzip.compress(lines_bytes(["Eins", "Zwei"])))
    en.write_bytes(gzip.compress(lines_bytes(["One", "Two"])))
    assert list(read_parallel(de, en)) == [(1, "Eins", "One"), (2, "Zwei", "Two")]


@pytest.mark.parametrize("damage", ["truncated", "not_gzip"])
def test_read_parallel_bad_gzip_names_the_file(tmp_path, damage):
    de = tmp_path / "train.de.gz"
    en = tmp_path / "train.en.gz"
    de.write_bytes(gzip.compress(lines_bytes(["Eins"] * 2000)))
    whole = gzip.compress(lines_bytes(["One"] * 2000))
    en.write_bytes(whole[: len(whole) // 2] if damage == "truncated" else b"plain text\n")
    with pytest.raises(CorpusError, match=f"{en}: corrupt or truncated file"):
        list(read_parallel(de, en))


def test_read_europarl_archive(tmp_path):
    archive = write_archive(
        tmp_path / "de-en.tgz",
        {
            "training/europarl-v7.de-en.de": lines_bytes(["Hallo", "", "Welt"]),
            "training/europarl-v7.de-en.en": lines_bytes(["Hello", "Two", "World"]),
        },
    )
    pairs = list(
        read_europarl_archive(
            archive, "training/europarl-v7.de-en.de", "training/europarl-v7.de-en.en"
        )
    )
    # An empty line is read as it is (cleaning drops it and counts it).
    assert pairs == [(1, "Hallo", "Hello"), (2, "", "Two"), (3, "Welt", "World")]


def test_read_europarl_archive_missing_member(tmp_path):
    archive = write_archive(tmp_path / "de-en.tgz", {"c.de": lines_bytes(["Hallo"])})
    with pytest.raises(CorpusError, match=r"de-en\.tgz.*member c\.en not found"):
        list(read_europarl_archive(archive, "c.de", "c.en"))


def test_read_europarl_archive_different_lengths(tmp_path):
    archive = write_archive(
        tmp_path / "de-en.tgz",
        {"c.de": lines_bytes(["a", "b", "c"]), "c.en": lines_bytes(["a"])},
    )
    with pytest.raises(CorpusError, match="different lengths") as caught:
        list(read_europarl_archive(archive, "c.de", "c.en"))
    assert f"{archive}:c.en has 1 lines" in str(caught.value)


def test_read_europarl_archive_invalid_utf8(tmp_path):
    archive = write_archive(
        tmp_path / "de-en.tgz", {"c.de": b"a\nb\n\xe4\n", "c.en": lines_bytes(["a", "b", "c"])}
    )
    with pytest.raises(CorpusError, match=f"{archive}:c.de:3: invalid UTF-8"):
        list(read_europarl_archive(archive, "c.de", "c.en"))


def test_read_europarl_archive_not_an_archive(tmp_path):
    archive = tmp_path / "broken.tgz"
    archive.write_bytes(b"this is not gzip")
    with pytest.raises(CorpusError, match="broken.tgz"):
        list(read_europarl_archive(archive, "c.de", "c.en"))


# --- clean ------------------------------------------------------------------------------------


def test_clean_counts_every_drop_reason():
    cfg = CleaningConfig(max_words=5, max_length_ratio=2.0, min_words=2)
    pairs = [
        ("Guten  Morgen", "Good\u00a0morning"),  # kept, normalised
        ("", "Empty source"),  # empty
        ("Hallo Welt", "   "),  # empty after normalisation
        ("Hallo", "Hello there"),  # too_short (German side has one word)
        ("eins zwei drei vier fünf sechs", "one two"),  # too_long
        ("ja ja", "yes indeed, absolutely, certainly"),  # length_ratio
        ("Wie geht es", "How are you"),  # test_overlap
        ("Guten Morgen", "Good morning"),  # duplicate of the first after normalisation
        ("Guten Morgen", "Morning, everyone"),  # same source, other target: kept
    ]
    kept, report = clean(numbered(pairs), cfg, exclude_sources={"Wie geht es"})
    assert kept == [("Guten Morgen", "Good morning"), ("Guten Morgen", "Morning, everyone")]
    assert report == {
        "read": 9,
        "kept": 2,
        "dropped": {
            "empty": 2,
            "too_short": 1,
            "too_long": 1,
            "length_ratio": 1,
            "test_overlap": 1,
            "duplicate": 1,
        },
    }


def test_clean_reports_zero_counts_for_every_reason():
    kept, report = clean(numbered([("Hallo", "Hello")]), CFG)
    assert kept == [("Hallo", "Hello")]
    assert report["dropped"] == dict.fromkeys(DROP_REASONS, 0)


def test_clean_deduplicates_keeping_first_in_input_order():
    pairs = [("b", "B"), ("a", "A"), ("b", "B"), ("c", "C"), ("a", "A"), ("a", "A")]
    kept, report = clean(numbered(pairs), CFG)
    assert kept == [("b", "B"), ("a", "A"), ("c", "C")]
    assert report["dropped"]["duplicate"] == 3


def test_clean_dedup_treats_composed_and_decomposed_alike():
    pairs = [("Bru\u0308cke", "bridge"), ("Br\u00fccke", "bridge")]
    kept, report = clean(numbered(pairs), CFG)
    assert kept == [("Br\u00fccke", "bridge")]
    assert report["dropped"]["duplicate"] == 1


def test_cleaning_config_rejects_nonsense():
    with pytest.raises(ValueError, match="max_words"):
        CleaningConfig(max_words=0, max_length_ratio=2.0)
    with pytest.raises(ValueError, match="max_length_ratio"):
        CleaningConfig(max_words=5, max_length_ratio=0.5)


@pytest.mark.skipif(not MULTI30K_TRAIN.exists(), reason="shared Multi30k data not present")
def test_clean_multi30k_train_keeps_nearly_everything():
    kept, report = clean(read_tsv(MULTI30K_TRAIN), CleaningConfig(80, 9.0))
    assert report["read"] == 28_997
    assert report["kept"] >= 28_700
    assert report["dropped"]["empty"] == 0
    assert report["dropped"]["duplicate"] == 0
    assert len(kept) == report["kept"]


# --- split_pools ------------------------------------------------------------------------------

SIZES = {"test": 10, "dev": 10, "detector": 10, "student": 20, "teacher": None}


def test_split_is_deterministic_by_seed():
    pairs = synthetic_pairs(100)
    first = split_pools(pairs, SIZES, seed=1)
    assert first == split_pools(pairs, SIZES, seed=1)
    assert first != split_pools(pairs, SIZES, seed=2)


def test_split_pools_are_disjoint_and_cover_everything_with_none():
    pairs = synthetic_pairs(100)
    pools = split_pools(pairs, SIZES, seed=7)
    assert {pool: len(rows) for pool, rows in pools.items()} == {
        "test": 10,
        "dev": 10,
        "detector": 10,
        "student": 20,
        "teacher": 50,
    }
    together = [pair for rows in pools.values() for pair in rows]
    assert len(set(together)) == len(together) == 100
    assert set(together) == set(pairs)


def test_split_none_may_be_any_pool():
    pools = split_pools(synthetic_pairs(30), {"dev": None, "student": 5, "teacher": 5}, seed=0)
    assert {pool: len(rows) for pool, rows in pools.items()} == {
        "dev": 20,
        "student": 5,
        "teacher": 5,
    }


def test_split_zero_size_and_missing_pools():
    pools = split_pools(synthetic_pairs(30), {"dev": 0, "student": 5}, seed=0)
    assert pools == {"dev": [], "student": pools["student"]}
    assert len(pools["student"]) == 5


def test_split_evaluation_pools_do_not_depend_on_training_sizes():
    pairs = synthetic_pairs(100)
    small = split_pools(pairs, {"test": 10, "dev": 5, "student": 10}, seed=3)
    large = split_pools(pairs, {"test": 10, "dev": 5, "student": 60}, seed=3)
    assert small["test"] == large["test"]
    assert small["dev"] == large["dev"]


def test_no_test_or_dev_source_is_in_another_pool():
    # 40 sources, each with three different translations: 120 pairs.
    pairs = [(f"quelle {i}", f"target {i} {k}") for i in range(40) for k in range(3)]
    report = {}
    sizes = {"test": 10, "dev": 10, "student": 20, "teacher": None}
    pools = split_pools(pairs, sizes, seed=5, report=report)
    sources = {pool: {de for de, _ in rows} for pool, rows in pools.items()}
    for held_out in ("test", "dev"):
        for other in set(pools) - {held_out}:
            assert not sources[held_out] & sources[other], (held_out, other)
    assert [len(pools[p]) for p in ("test", "dev", "student")] == [10, 10, 20]
    together = sum(len(rows) for rows in pools.values())
    assert report["held_out_sources"] == 120 - together > 0
    # Without repeated sources nothing is skipped and the pools are as before.
    plain = {}
    split_pools(synthetic_pairs(100), SIZES, seed=7, report=plain)
    assert plain == {"held_out_sources": 0}


def test_split_oversize_request():
    sizes = {"test": 10, "dev": 10, "student": 15, "teacher": None}
    with pytest.raises(CorpusError) as caught:
        split_pools(synthetic_pairs(30), sizes, seed=0)
    message = str(caught.value)
    assert "ask for 35 pairs" in message
    assert "only 30 pairs are available after cleaning" in message
    assert "test=10, dev=10, student=15, teacher=all remaining" in message


def test_split_rejects_two_open_ended_pools_and_unknown_pools():
    with pytest.raises(CorpusError, match="at most one pool"):
        split_pools(synthetic_pairs(10), {"student": None, "teacher": None}, seed=0)
    with pytest.raises(CorpusError, match="unknown pool"):
        split_pools(synthetic_pairs(10), {"training": 5}, seed=0)
    with pytest.raises(CorpusError, match="non-negative"):
        split_pools(synthetic_pairs(10), {"dev": -1}, seed=0)


# --- prepare ----------------------------------------------------------------------------------


def read_pool(out_dir: Path, pool: str) -> pl.DataFrame:
    return pl.read_parquet(out_dir / f"{pool}.parquet")


def test_prepare_tsv_writes_pools_and_report(tmp_path):
    pairs = synthetic_pairs(60) + [("", "empty"), ("Satz Nummer 0", "sentence number 0")]
    corpus = {"format": "tsv", "tsv": write_tsv(tmp_path / "c.tsv", pairs), "test_tsv": None}
    sizes = {"test": 5, "dev": 5, "detector": 10, "student": 20, "teacher": None}
    out_dir = tmp_path / "pools"
    report_path = tmp_path / "report.json"

    report = prepare(corpus, CFG, sizes, 11, out_dir, report_path)

    assert sorted(p.name for p in out_dir.iterdir()) == sorted(f"{p}.parquet" for p in POOLS)
    frames = {pool: read_pool(out_dir, pool) for pool in POOLS}
    assert {pool: frame.height for pool, frame in frames.items()} == {
        "test": 5,
        "dev": 5,
        "detector": 10,
        "student": 20,
        "teacher": 20,
    }
    test = frames["test"]
    assert test.columns == ["id", "source", "target"]
    assert test["id"].to_list() == [f"test-{i:06d}" for i in range(5)]
    assert all(dtype == pl.String for dtype in test.dtypes)
    everything = pl.concat(frames.values())
    assert everything.select("source", "target").unique().height == 60

    on_disk = json.loads(report_path.read_text(encoding="utf-8"))
    assert on_disk == report
    assert on_disk["corpus"]["read"] == 62
    assert on_disk["corpus"]["kept"] == 60
    assert on_disk["corpus"]["dropped"]["empty"] == 1
    assert on_disk["corpus"]["dropped"]["duplicate"] == 1
    assert on_disk["test"] is None
    assert on_disk["pools"] == {"teacher": 20, "student": 20, "detector": 10, "dev": 5, "test": 5}
    assert on_disk["seed"] == 11
    assert on_disk["sizes"] == sizes


def test_prepare_is_deterministic(tmp_path):
    corpus = {"format": "tsv", "tsv": write_tsv(tmp_path / "c.tsv", synthetic_pairs(40))}
    sizes = {"test": 5, "dev": 5, "student": 10, "teacher": None}
    prepare(corpus, CFG, sizes, 4, tmp_path / "a", tmp_path / "a.json")
    prepare(corpus, CFG, sizes, 4, tmp_path / "b", tmp_path / "b.json")
    for pool in POOLS:
        assert read_pool(tmp_path / "a", pool).equals(read_pool(tmp_path / "b", pool))


def test_prepare_with_separate_test_file_removes_overlap(tmp_path):
    train = synthetic_pairs(40)
    test = [
        ("Satz Nummer 3", "a different reference"),  # overlaps a training source
        ("Ein  neuer Satz", "A new sentence"),
        ("Ein neuer Satz", "A new sentence"),  # duplicate within the test file
        ("", "empty"),
        ("Kurz", "A far far far far far longer reference than the source"),  # ratio kept
    ]
    corpus = {
        "format": "tsv",
        "tsv": write_tsv(tmp_path / "train.tsv", train),
        "test_tsv": write_tsv(tmp_path / "test.tsv", test),
    }
    sizes = {"test": 1000, "dev": 4, "detector": 0, "student": 10, "teacher": None}
    out_dir = tmp_path / "pools"
    report = prepare(corpus, CFG, sizes, 0, out_dir, tmp_path / "report.json")

    test_frame = read_pool(out_dir, "test")
    # A published test set loses no pair to the length rules of training data.
    assert test_frame["source"].to_list() == ["Satz Nummer 3", "Ein neuer Satz", "Kurz"]
    assert test_frame["id"].to_list() == ["test-000000", "test-000001", "test-000002"]
    training_sources = set()
    for pool in ("teacher", "student", "detector", "dev"):
        training_sources |= set(read_pool(out_dir, pool)["source"].to_list())
    assert "Satz Nummer 3" not in training_sources
    assert len(training_sources) == 39

    assert report["test"] == {
        "read": 5,
        "kept": 3,
        "dropped": {**dict.fromkeys(DROP_REASONS, 0), "empty": 1, "duplicate": 1},
    }
    assert report["corpus"]["dropped"]["test_overlap"] == 1
    assert report["pools"] == {"teacher": 25, "student": 10, "detector": 0, "dev": 4, "test": 3}


def test_prepare_pools_missing_from_sizes_are_written_empty(tmp_path):
    corpus = {"format": "tsv", "tsv": write_tsv(tmp_path / "c.tsv", synthetic_pairs(20))}
    out_dir = tmp_path / "pools"
    report = prepare(corpus, CFG, {"test": 5, "teacher": None}, 0, out_dir, tmp_path / "r.json")
    assert report["pools"] == {"teacher": 15, "student": 0, "detector": 0, "dev": 0, "test": 5}
    assert read_pool(out_dir, "student").columns == ["id", "source", "target"]


def test_prepare_europarl_archive(tmp_path):
    pairs = synthetic_pairs(30)
    archive = write_archive(
        tmp_path / "de-en.tgz",
        {
            "training/europarl-v7.de-en.de": lines_bytes([de for de, _ in pairs]),
            "training/europarl-v7.de-en.en": lines_bytes([en for _, en in pairs]),
        },
    )
    corpus = {
        "format": "europarl",
        "tsv": None,
        "test_tsv": None,
        "de_member": "training/europarl-v7.de-en.de",
        "en_member": "training/europarl-v7.de-en.en",
    }
    sizes = {"test": 5, "dev": 5, "detector": 5, "student": 5, "teacher": None}
    out_dir = tmp_path / "pools"
    report = prepare(corpus, CFG, sizes, 0, out_dir, tmp_path / "r.json", archive=archive)
    assert report["pools"]["teacher"] == 10
    assert set(read_pool(out_dir, "test")["source"].to_list()) <= {de for de, _ in pairs}


def write_parallel(directory: Path, split: str, pairs: list[tuple[str, str]]) -> dict[str, Path]:
    """A split as a multi30k corpus has it: `<split>.de.gz` and `<split>.en.gz`."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {}
    for side, lang in enumerate(("de", "en")):
        path = directory / f"{split}.{lang}.gz"
        path.write_bytes(gzip.compress(lines_bytes([pair[side] for pair in pairs])))
        files[path.name] = path
    return files


MULTI30K = {
    "format": "multi30k",
    "base_url": "https://example.org/raw",
    "train_split": "train",
    "test_split": "test_2016_flickr",
    "sha256s": {},
}


def test_prepare_multi30k_equals_the_same_pairs_as_tsv(tmp_path):
    train = [
        *synthetic_pairs(50),
        ("Satz  Nummer 1", "sentence number 1"),  # a duplicate once whitespace is collapsed
        ("", "empty"),
        ("Satz Nummer 3", "overlaps the test set"),
        ("Zu\u0308rich", "Zurich"),  # decomposed; NFC-composed like the TSV path
    ]
    test = [("Satz Nummer 3", "a reference"), ("Kurz", "A far far far far longer reference")]
    files = {
        **write_parallel(tmp_path / "raw", "train", train),
        **write_parallel(tmp_path / "raw", "test_2016_flickr", test),
    }
    tsv = {
        "format": "tsv",
        "tsv": write_tsv(tmp_path / "train.tsv", train),
        "test_tsv": write_tsv(tmp_path / "test.tsv", test),
    }
    sizes = {"test": 0, "dev": 5, "detector": 5, "student": 10, "teacher": None}

    from_tsv = prepare(tsv, CFG, sizes, 3, tmp_path / "a", tmp_path / "a.json")
    from_gz = prepare(MULTI30K, CFG, sizes, 3, tmp_path / "b", tmp_path / "b.json", files=files)

    assert from_gz == from_tsv
    assert from_gz["pools"] == {"teacher": 30, "student": 10, "detector": 5, "dev": 5, "test": 2}
    assert from_gz["corpus"]["dropped"]["test_overlap"] == 2  # synthetic and the extra one
    for pool in POOLS:
        assert read_pool(tmp_path / "b", pool).equals(read_pool(tmp_path / "a", pool))
    assert "Z\u00fcrich" in pl.concat(read_pool(tmp_path / "b", p) for p in POOLS)["source"]


def test_prepare_multi30k_without_test_split_carves_the_test_pool(tmp_path):
    files = write_parallel(tmp_path / "raw", "train", synthetic_pairs(30))
    corpus = {**MULTI30K, "test_split": None}
    sizes = {"test": 5, "dev": 5, "teacher": None}
    report = prepare(corpus, CFG, sizes, 0, tmp_path / "p", tmp_path / "r.json", files=files)
    assert report["test"] is None
    assert report["pools"]["test"] == 5 and report["pools"]["teacher"] == 20


def _bad_tsv_corpus(tmp_path: Path, case: str) -> tuple[dict, Path | dict | None, str]:
    """A corpus config that fails in the way `case` names, its archive or multi30k files, and
    the expected text."""
    good = "".join(f"Satz {i}\tsentence {i}\n" for i in range(20)).encode()
    path = tmp_path / "corpus.tsv"
    if case == "missing_file":
        return {"format": "tsv", "tsv": path}, None, str(path)
    if case == "no_tab":
        path.write_bytes(good + b"kein Tab\n")
        return {"format": "tsv", "tsv": path}, None, f"{path}:21"
    if case == "invalid_utf8":
        path.write_bytes(b"a\tb\nc\td\nM\xfcnchen\tMunich\n" + good)
        return {"format": "tsv", "tsv": path}, None, f"{path}:3"
    if case == "bad_test_file":
        path.write_bytes(good)
        test = tmp_path / "test.tsv"
        test.write_bytes(b"a\tb\nnur eine Spalte\n")
        return {"format": "tsv", "tsv": path, "test_tsv": test}, None, f"{test}:2"
    if case in ("missing_split_file", "truncated_gzip"):
        pairs = [(f"Satz {i}", f"sentence {i}") for i in range(20)]
        files = write_parallel(tmp_path, "train", pairs)
        files.update(write_parallel(tmp_path, "test", pairs[:3]))
        corpus = {**MULTI30K, "test_split": "test"}
        if case == "missing_split_file":
            del files["test.en.gz"]
            return corpus, files, "files of corpus.test_split 'test' were not given: test.en.gz"
        train_en = files["train.en.gz"]
        train_en.write_bytes(train_en.read_bytes()[:-12])
        return corpus, files, f"{train_en}: corrupt or truncated"
    members = {"c.de": good, "c.en": good + b"one more line\n"}
    if case == "missing_member":
        del members["c.en"]
    archive = write_archive(tmp_path / "c.tgz", members)
    corpus = {"format": "europarl", "de_member": "c.de", "en_member": "c.en"}
    if case == "different_lengths":
        return corpus, archive, f"{archive}:c.de has 20 lines"
    return corpus, archive, "c.en not found"


@pytest.mark.parametrize(
    "case",
    [
        "missing_file",
        "no_tab",
        "invalid_utf8",
        "bad_test_file",
        "different_lengths",
        "missing_member",
        "missing_split_file",
        "truncated_gzip",
    ],
)
def test_prepare_bad_input_leaves_no_output(tmp_path, case):
    corpus, inputs, expected = _bad_tsv_corpus(tmp_path, case)
    archive, files = (None, inputs) if isinstance(inputs, dict) else (inputs, None)
    out_dir = tmp_path / "pools"
    report_path = tmp_path / "report.json"
    sizes = {"test": 2, "dev": 2, "student": 2, "teacher": None}
    with pytest.raises(CorpusError) as caught:
        prepare(corpus, CFG, sizes, 0, out_dir, report_path, archive=archive, files=files)
    assert expected in str(caught.value)
    assert not out_dir.exists() or list(out_dir.iterdir()) == []
    assert not report_path.exists()


def test_prepare_oversize_request_leaves_no_output(tmp_path):
    corpus = {"format": "tsv", "tsv": write_tsv(tmp_path / "c.tsv", synthetic_pairs(10))}
    out_dir = tmp_path / "pools"
    with pytest.raises(CorpusError, match="only 10 pairs are available"):
        prepare(corpus, CFG, {"test": 8, "dev": 8}, 0, out_dir, tmp_path / "r.json")
    assert not out_dir.exists()


def test_prepare_removes_pools_when_writing_fails(tmp_path, monkeypatch):
    corpus = {"format": "tsv", "tsv": write_tsv(tmp_path / "c.tsv", synthetic_pairs(20))}
    out_dir = tmp_path / "pools"
    report_path = tmp_path / "report.json"

    def failing_write_json(data, path):
        raise OSError("disk full")

    monkeypatch.setattr("regurgitate.study.corpus.write_json", failing_write_json)
    with pytest.raises(OSError, match="disk full"):
        prepare(corpus, CFG, {"test": 5, "teacher": None}, 0, out_dir, report_path)
    assert list(out_dir.iterdir()) == []
    assert not report_path.exists()


def test_prepare_unknown_format(tmp_path):
    with pytest.raises(CorpusError, match="unknown corpus format 'moses'"):
        prepare({"format": "moses"}, CFG, {}, 0, tmp_path / "p", tmp_path / "r.json")


# --- text that is not text --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"a\tb\nc\x00d\te\n", r"c\.tsv:2: NUL byte at character 2"),
        (b"\xef\xbb\xbfa\tb\nc\td\n\xef\xbb\xbfe\tf\n", r"c\.tsv:3: byte-order mark \(U\+FEFF\)"),
        (b"a\tb\xef\xbb\xbf\n", r"c\.tsv:1: byte-order mark \(U\+FEFF\) at character 4"),
        (b"a\tb\rc\td\re\tf\r", r"c\.tsv: the lines end in CR \(\\r\) alone.*\(4 lines in it\)"),
    ],
    ids=["nul", "bom_after_the_first_line", "bom_inside_the_first_line", "cr_only"],
)
def test_text_that_is_not_text_is_refused_with_file_and_line(tmp_path, content, expected):
    path = tmp_path / "c.tsv"
    path.write_bytes(content)
    with pytest.raises(CorpusError, match=expected):
        list(read_tsv(path))


def test_parallel_files_with_cr_only_line_endings_are_named(tmp_path):
    de, en = tmp_path / "c.de", tmp_path / "c.en"
    de.write_bytes(b"eins\rzwei\r")
    en.write_bytes(b"one\rtwo\r")
    with pytest.raises(CorpusError, match=r"c\.de: the lines end in CR"):
        list(read_parallel(de, en))


def test_a_bom_at_the_start_and_crlf_endings_are_read(tmp_path):
    path = tmp_path / "c.tsv"
    path.write_bytes(b"\xef\xbb\xbfa\tb\r\nc\td\r\n")
    assert list(read_tsv(path)) == [(1, "a", "b"), (2, "c", "d")]


SMALL_SIZES = {"test": 2, "dev": 2, "student": 2, "teacher": None}


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ([], r"c\.tsv: no pairs left after cleaning \(it holds no lines\)"),
        (
            [("eins zwei drei vier fünf sechs sieben acht neun zehn elf", "one"), ("", "x")] * 3,
            r"c\.tsv: no pairs left after cleaning \(6 pairs read, 0 kept, dropped: 3 empty, "
            r"3 too long\)",
        ),
    ],
    ids=["empty", "all_filtered"],
)
def test_a_corpus_that_cleaning_empties_is_named_with_the_reasons(tmp_path, pairs, expected):
    corpus = {"format": "tsv", "tsv": write_tsv(tmp_path / "c.tsv", pairs)}
    with pytest.raises(CorpusError, match=expected):
        prepare(corpus, CFG, SMALL_SIZES, 0, tmp_path / "pools", tmp_path / "r.json")
    assert not (tmp_path / "pools").exists()


def test_sizes_that_leave_the_teacher_pool_empty_name_the_key(tmp_path):
    pairs = synthetic_pairs(6) + [("", "leer")]
    corpus = {"format": "tsv", "tsv": write_tsv(tmp_path / "c.tsv", pairs)}
    with pytest.raises(CorpusError) as caught:
        prepare(corpus, CFG, SMALL_SIZES, 0, tmp_path / "pools", tmp_path / "r.json")
    message = str(caught.value)
    assert "pools.teacher: null" in message and "they leave none" in message
    assert "c.tsv" in message and "7 pairs read, 6 kept, dropped: 1 empty" in message
    assert not (tmp_path / "pools").exists()
