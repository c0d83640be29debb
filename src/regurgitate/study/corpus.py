"""Read, clean and split a German-English parallel corpus into the study's disjoint pools.

Pairs are (source German, target English). Readers stream line by line, because a Europarl
side has about 1.9 million lines; every problem with the input raises `CorpusError` with the
file (and, where it applies, the 1-based line number) in its message. Files whose name ends in
`.gz` are decompressed while they are read.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import logging
import random
import tarfile
import unicodedata
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import polars as pl

from regurgitate.io import write_json, write_parquet

log = logging.getLogger(__name__)

POOLS = ("teacher", "student", "detector", "dev", "test")

# Pools are carved from the shuffled corpus in this order, so that the evaluation pools keep
# their contents when a training pool's size changes.
CARVE_ORDER = ("test", "dev", "detector", "student", "teacher")

DROP_REASONS = ("empty", "too_short", "too_long", "length_ratio", "test_overlap", "duplicate")

CORPUS_FORMATS = ("europarl", "multi30k", "tsv")

# The languages of a `multi30k` corpus's files: `<split>.<lang>.gz`, line n of one the
# translation of line n of the other.
LANGUAGES = ("de", "en")


class CorpusError(ValueError):
    """Bad corpus input: the message names the file and, where it applies, the line."""


# ---------------------------------------------------------------------------------------------
# Reading


def normalise(text: str) -> str:
    """NFC-compose `text`, collapse every whitespace run (tabs, non-breaking spaces) to a space."""
    # str.split() without arguments splits on every Unicode whitespace character, \u00a0 included.
    return " ".join(unicodedata.normalize("NFC", text).split())


def _strip_newline(raw: bytes) -> bytes:
    """Remove one trailing \\n or \\r\\n, nothing else: other whitespace is content."""
    if raw.endswith(b"\n"):
        raw = raw[:-1]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
    return raw


def _decode_line(raw: bytes, name: str, line_no: int) -> str:
    try:
        text = _strip_newline(raw).decode("utf-8", errors="strict")
    except UnicodeDecodeError as err:
        raise CorpusError(
            f"{name}:{line_no}: invalid UTF-8 at byte {err.start} of the line "
            f"({raw[err.start : err.end]!r}); the corpus must be UTF-8 encoded"
        ) from None
    # A byte-order mark at the start of a file is an encoding artefact, not text.
    if line_no == 1:
        text = text.removeprefix("\ufeff")
    _check_text(raw, text, name, line_no)
    return text


def _check_text(raw: bytes, text: str, name: str, line_no: int) -> None:
    """Refuse what valid UTF-8 can hold but text does not: NUL bytes (a binary or UTF-16 file),
    a byte-order mark past the file's start (files concatenated with theirs), and a file whose
    lines end in CR alone (classic Mac OS), which reads as one long line."""
    where = f"{name}:{line_no}"
    if "\0" in text:
        raise CorpusError(
            f"{where}: NUL byte at character {text.index(chr(0)) + 1} of the line; the corpus "
            "must be UTF-8 text (a NUL byte means a binary or UTF-16 file)"
        )
    if "\ufeff" in text:
        raise CorpusError(
            f"{where}: byte-order mark (U+FEFF) at character {text.index(chr(0xFEFF)) + 1} of "
            "the line; only a file's first line may start with one (were files with their own "
            "marks joined together?); remove it, e.g. sed 's/\\xEF\\xBB\\xBF//g'"
        )
    if line_no == 1 and not raw.endswith(b"\n") and "\r" in text:
        raise CorpusError(
            f"{name}: the lines end in CR (\\r) alone, old Mac style, so the whole file reads as "
            f"one line ({text.count(chr(13)) + 1} lines in it); convert the line endings to LF "
            "(\\n), e.g. tr '\\r' '\\n'"
        )


def _open_binary(path: Path) -> IO[bytes]:
    """Open a corpus file for reading bytes; a `.gz` file is decompressed as it is read."""
    try:
        if path.suffix == ".gz":
            return gzip.open(path, "rb")
        return path.open("rb")
    except FileNotFoundError:
        raise CorpusError(f"{path}: corpus file not found") from None
    except OSError as err:
        raise CorpusError(f"{path}: cannot open corpus file: {err.strerror or err}") from None


def _lines(handle: IO[bytes], path: Path) -> Iterator[bytes]:
    """The lines of an open corpus file; a corrupt or truncated .gz stops with the file named."""
    try:
        yield from handle
    except (OSError, EOFError, zlib.error) as err:
        raise CorpusError(f"{path}: corrupt or truncated file: {err}") from None


def read_tsv(path: str | Path) -> Iterator[tuple[int, str, str]]:
    """Yield (line_no, de, en) from a `german<TAB>english` file, one pair per line."""
    path = Path(path)
    with _open_binary(path) as handle:
        for line_no, raw in enumerate(_lines(handle, path), start=1):
            text = _decode_line(raw, str(path), line_no)
            fields = text.split("\t")
            if len(fields) == 1:
                raise CorpusError(
                    f"{path}:{line_no}: no tab on this line; expected 'german<TAB>english'"
                )
            if len(fields) > 2:
                raise CorpusError(
                    f"{path}:{line_no}: {len(fields) - 1} tabs on this line; expected exactly "
                    "one, 'german<TAB>english'"
                )
            if line_no == 1 and _is_header(fields):
                raise CorpusError(
                    f"{path}:1: {text!r} looks like a column header, which would be read as a "
                    "German-English pair; delete the first line"
                )
            yield line_no, fields[0], fields[1]


# What the columns of a German-English table are called in its header line.
HEADER_NAMES = frozenset(
    {"de", "en", "deu", "eng", "ger", "german", "english", "deutsch", "englisch"}
    | {"source", "target", "src", "tgt", "de-de", "en-us", "en-gb", "sentence", "translation"}
)


def _is_header(fields: list[str]) -> bool:
    return all(field.strip().lower() in HEADER_NAMES for field in fields)


def _read_lockstep(
    de_lines: Iterable[bytes], en_lines: Iterable[bytes], de_name: str, en_name: str
) -> Iterator[tuple[int, str, str]]:
    """Pair line n of one side with line n of the other; unequal lengths are an error."""
    de_iter, en_iter = iter(de_lines), iter(en_lines)
    line_no = 0
    while True:
        de_raw = next(de_iter, None)
        en_raw = next(en_iter, None)
        if de_raw is None and en_raw is None:
            return
        if de_raw is None or en_raw is None:
            shorter, longer = (de_name, en_name) if de_raw is None else (en_name, de_name)
            raise CorpusError(
                f"parallel files have different lengths: {shorter} has {line_no} lines, "
                f"{longer} has more"
            )
        line_no += 1
        yield (
            line_no,
            _decode_line(de_raw, de_name, line_no),
            _decode_line(en_raw, en_name, line_no),
        )


def read_parallel(de_path: str | Path, en_path: str | Path) -> Iterator[tuple[int, str, str]]:
    """Yield (line_no, de, en) from two line-aligned files, one per language."""
    de_path, en_path = Path(de_path), Path(en_path)
    with _open_binary(de_path) as de_file, _open_binary(en_path) as en_file:
        yield from _read_lockstep(
            _lines(de_file, de_path), _lines(en_file, en_path), str(de_path), str(en_path)
        )


def parallel_file_names(split: str) -> tuple[str, str]:
    """The German and English files of a split of a `multi30k` corpus: `<split>.de.gz`, ..."""
    return tuple(f"{split}.{lang}.gz" for lang in LANGUAGES)


def _parallel_split(
    files: dict[str, Path] | None, split: str | None, key: str
) -> tuple[str, Iterator[tuple[int, str, str]]]:
    """(a name for logs, the pairs) of `split` (the value of config key `key`) among `files`."""
    if not split:
        raise CorpusError(f"corpus format is 'multi30k' but no {key} is given")
    names = parallel_file_names(split)
    missing = [name for name in names if not files or name not in files]
    if missing:
        raise CorpusError(
            f"corpus format is 'multi30k' but the files of {key} {split!r} were not given: "
            f"{', '.join(missing)}"
        )
    de_path, en_path = (Path(files[name]) for name in names)
    return f"{de_path} + {en_path}", read_parallel(de_path, en_path)


def _member_name(name: str) -> str:
    # Archives made with `tar -C dir .` prefix every name with "./".
    return name.removeprefix("./")


def _open_member(archive: Path, member: str, stack: contextlib.ExitStack) -> IO[bytes]:
    """Open `member` of a .tgz for streaming, through a tar handle of its own.

    Each side gets its own tar handle because a gzip stream can only seek forward cheaply:
    reading two members alternately through one handle would decompress from the start of the
    archive at every buffer refill.
    """
    try:
        tar = stack.enter_context(tarfile.open(archive, mode="r:gz"))  # noqa: SIM115 - closed by the stack
    except FileNotFoundError:
        raise CorpusError(f"{archive}: corpus archive not found") from None
    except (tarfile.TarError, OSError, EOFError) as err:
        raise CorpusError(f"{archive}: cannot read as a .tgz archive: {err}") from None
    wanted = _member_name(member)
    # Walk the headers only as far as the member, instead of indexing the whole archive.
    for info in tar:
        if _member_name(info.name) == wanted:
            handle = tar.extractfile(info)
            if handle is None:
                raise CorpusError(f"{archive}: member {member} is not a regular file")
            return stack.enter_context(handle)
    raise CorpusError(f"{archive}: member {member} not found in the archive")


def read_europarl_archive(
    archive: str | Path, de_member: str, en_member: str
) -> Iterator[tuple[int, str, str]]:
    """Yield (line_no, de, en) from two line-aligned members of a .tgz, without extracting it."""
    archive = Path(archive)
    with contextlib.ExitStack() as stack:
        try:
            de_file = _open_member(archive, de_member, stack)
            en_file = _open_member(archive, en_member, stack)
            yield from _read_lockstep(
                de_file, en_file, f"{archive}:{de_member}", f"{archive}:{en_member}"
            )
        except (tarfile.TarError, OSError, EOFError) as err:
            # A truncated or corrupt archive fails while streaming, not when it is opened.
            raise CorpusError(f"{archive}: archive is corrupt or truncated: {err}") from None


# ---------------------------------------------------------------------------------------------
# Cleaning


@dataclass(frozen=True)
class CleaningConfig:
    """Filters applied to every pair; word counts are whitespace words, per side."""

    max_words: int
    max_length_ratio: float
    min_words: int = 1

    def __post_init__(self) -> None:
        if self.min_words < 1:
            raise ValueError(f"min_words must be at least 1, got {self.min_words}")
        if self.max_words < self.min_words:
            raise ValueError(
                f"max_words ({self.max_words}) must be at least min_words ({self.min_words})"
            )
        if self.max_length_ratio < 1:
            raise ValueError(f"max_length_ratio must be at least 1, got {self.max_length_ratio}")


def _length_ratio(de: str, en: str) -> float:
    """Characters of the longer side over characters of the shorter one."""
    longer, shorter = max(len(de), len(en)), min(len(de), len(en))
    return longer / max(shorter, 1)


def _drop_reason(de: str, en: str, cfg: CleaningConfig) -> str | None:
    """The first length-based filter the normalised pair fails, or None if it passes them all."""
    if not de or not en:
        return "empty"
    de_words, en_words = len(de.split(" ")), len(en.split(" "))
    if min(de_words, en_words) < cfg.min_words:
        return "too_short"
    if max(de_words, en_words) > cfg.max_words:
        return "too_long"
    if _length_ratio(de, en) > cfg.max_length_ratio:
        return "length_ratio"
    return None


def _pair_digest(de: str, en: str) -> bytes:
    # Normalised text holds no tab, so the tab makes the key unambiguous. A 16-byte digest per
    # pair instead of the strings keeps deduplication of 1.9M pairs well under the memory limit.
    return hashlib.blake2b(f"{de}\t{en}".encode(), digest_size=16).digest()


def _cleaned(
    pairs: Iterable[tuple[int, str, str]],
    cfg: CleaningConfig,
    exclude_sources: set[str] | frozenset[str],
    report: dict,
) -> Iterator[tuple[str, str]]:
    """Yield the kept normalised pairs in input order, counting reads and drops in `report`."""
    seen: set[bytes] = set()
    for _line_no, raw_de, raw_en in pairs:
        report["read"] += 1
        de, en = normalise(raw_de), normalise(raw_en)
        reason = _drop_reason(de, en, cfg)
        if reason is None and de in exclude_sources:
            reason = "test_overlap"
        if reason is None:
            digest = _pair_digest(de, en)
            if digest in seen:
                reason = "duplicate"
            else:
                seen.add(digest)
        if reason is None:
            report["kept"] += 1
            yield de, en
        else:
            report["dropped"][reason] += 1


def _new_report() -> dict:
    return {"read": 0, "kept": 0, "dropped": dict.fromkeys(DROP_REASONS, 0)}


def clean(
    pairs: Iterable[tuple[int, str, str]],
    cfg: CleaningConfig,
    exclude_sources: set[str] | frozenset[str] = frozenset(),
) -> tuple[list[tuple[str, str]], dict]:
    """Normalise pairs and drop the unusable ones; return kept pairs (input order) and counts.

    `exclude_sources` are normalised sources (e.g. of a separate test set) that must not occur
    in the kept pairs.
    """
    report = _new_report()
    kept = list(_cleaned(pairs, cfg, exclude_sources, report))
    return kept, report


def _clean_packed(
    pairs: Iterable[tuple[int, str, str]],
    cfg: CleaningConfig,
    exclude_sources: frozenset[str],
) -> tuple[list[bytes], dict]:
    """`clean`, keeping each pair as one UTF-8 `de<TAB>en` bytes object: a third to a half of
    the memory of two str objects in a tuple, which is what lets Europarl's 1.9 million pairs
    stay well under 2 GB."""
    report = _new_report()
    kept = [f"{de}\t{en}".encode() for de, en in _cleaned(pairs, cfg, exclude_sources, report)]
    return kept, report


def _unpack(packed: list[bytes]) -> list[tuple[str, str]]:
    return [tuple(item.decode().split("\t")) for item in packed]


# ---------------------------------------------------------------------------------------------
# Splitting


def _check_sizes(sizes: dict[str, int | None]) -> None:
    unknown = sorted(set(sizes) - set(POOLS))
    if unknown:
        raise CorpusError(f"unknown pool(s) in sizes: {unknown}; pools are {list(POOLS)}")
    for pool, size in sizes.items():
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise CorpusError(
                f"size of pool {pool!r} must be a non-negative integer or null, got {size!r}"
            )
    open_ended = [pool for pool, size in sizes.items() if size is None]
    if len(open_ended) > 1:
        raise CorpusError(
            f"at most one pool may take all remaining pairs (size null), got {open_ended}"
        )


def _describe_sizes(sizes: dict[str, int | None]) -> str:
    return ", ".join(
        f"{pool}={'all remaining' if sizes[pool] is None else sizes[pool]}"
        for pool in CARVE_ORDER
        if pool in sizes
    )


# Pools whose sources no other pool may hold: a student that trained on a test or dev source
# (with any target) would be scored or selected on a sentence it has seen.
HELD_OUT_POOLS = ("test", "dev")


def _source_of(pair: tuple[str, str] | bytes) -> str | bytes:
    """The German side of a pair, as a tuple or packed as `de<TAB>en` bytes."""
    return pair.split(b"\t", 1)[0] if isinstance(pair, bytes) else pair[0]


def split_pools(
    pairs: list, sizes: dict[str, int | None], seed: int, report: dict | None = None
) -> dict[str, list]:
    """Shuffle `pairs` with `seed` and carve disjoint pools of the requested sizes.

    Only the pools named in `sizes` are returned. A size of None takes whatever the fixed-size
    pools leave (at most one pool may have it). No source of a HELD_OUT_POOLS pool appears in
    another pool: a later pair with such a source is skipped, and `report["held_out_sources"]`
    counts the skipped pairs.
    """
    _check_sizes(sizes)
    fixed_total = sum(size for size in sizes.values() if size is not None)
    if fixed_total > len(pairs):
        raise CorpusError(
            f"the pool sizes ask for {fixed_total} pairs ({_describe_sizes(sizes)}) but only "
            f"{len(pairs)} pairs are available after cleaning"
        )
    shuffled = list(pairs)
    random.Random(seed).shuffle(shuffled)

    pools: dict[str, list] = {pool: [] for pool in CARVE_ORDER if pool in sizes}
    held_out: dict[str, str] = {}  # source -> the held-out pool that has it
    skipped = 0
    # Fixed-size pools in carving order, then the open-ended one takes what is left.
    order = [p for p in CARVE_ORDER if p in sizes and sizes[p] is not None]
    order += [p for p in CARVE_ORDER if p in sizes and sizes[p] is None]
    position = 0
    for pool in order:
        wanted = sizes[pool]
        while position < len(shuffled) and (wanted is None or len(pools[pool]) < wanted):
            pair = shuffled[position]
            position += 1
            owner = held_out.get(_source_of(pair))
            if owner is not None and owner != pool:
                skipped += 1
                continue
            if pool in HELD_OUT_POOLS:
                held_out.setdefault(_source_of(pair), pool)
            pools[pool].append(pair)
        if wanted is None and not pools[pool]:
            raise CorpusError(
                f"pool {pool!r} (pools.{pool}: null) takes the pairs the other pools leave, "
                f"and they leave none: {_describe_sizes(sizes)} of {len(pairs)} pairs after "
                "cleaning"
            )
        if wanted is not None and len(pools[pool]) < wanted:
            raise CorpusError(
                f"the pool sizes ask for {fixed_total} pairs ({_describe_sizes(sizes)}) but "
                f"only {len(pairs) - skipped} are left once the {skipped} pairs that repeat a "
                "test or dev source are removed"
            )
    if report is not None:
        report["held_out_sources"] = skipped
    return pools


# ---------------------------------------------------------------------------------------------
# The whole step


def _log_report(name: str, report: dict) -> None:
    log.info("%s: read %d pairs, kept %d", name, report["read"], report["kept"])
    for reason, count in report["dropped"].items():
        log.info("%s: dropped %d pairs (%s)", name, count, reason)


def _read_corpus(
    corpus: dict, archive: Path | None, files: dict[str, Path] | None
) -> tuple[str, Iterator[tuple[int, str, str]]]:
    """(a name for messages, the pairs) of the corpus the pools are carved from."""
    fmt = corpus.get("format")
    if fmt == "multi30k":
        return _parallel_split(files, corpus.get("train_split"), "corpus.train_split")
    if fmt == "tsv":
        if not corpus.get("tsv"):
            raise CorpusError("corpus format is 'tsv' but no corpus.tsv path is given")
        return str(corpus["tsv"]), read_tsv(corpus["tsv"])
    if fmt == "europarl":
        if archive is None:
            raise CorpusError("corpus format is 'europarl' but no archive was given")
        pairs = read_europarl_archive(archive, corpus["de_member"], corpus["en_member"])
        return str(archive), pairs
    raise CorpusError(f"unknown corpus format {fmt!r}; allowed: {list(CORPUS_FORMATS)}")


def _what_cleaning_left(report: dict) -> str:
    """How many pairs were read and kept, and why the others were dropped."""
    if not report["read"]:
        return "it holds no lines"
    dropped = ", ".join(
        f"{count} {reason.replace('_', ' ')}"
        for reason, count in report["dropped"].items()
        if count
    )
    return f"{report['read']} pairs read, {report['kept']} kept, dropped: {dropped or 'none'}"


def _test_set(
    corpus: dict, files: dict[str, Path] | None
) -> tuple[str, Iterator[tuple[int, str, str]]] | None:
    """(a name for logs, the pairs) of the corpus's separate test set, or None if it has none:
    `corpus.test_split` of a `multi30k` corpus, `corpus.test_tsv` of the others."""
    if corpus.get("format") == "multi30k":
        split = corpus.get("test_split")
        return _parallel_split(files, split, "corpus.test_split") if split else None
    test_tsv = corpus.get("test_tsv")
    return (str(test_tsv), read_tsv(test_tsv)) if test_tsv else None


def pool_frame(pool: str, pairs: list[tuple[str, str]]) -> pl.DataFrame:
    """A pool as a table: id (pool name + index within the pool), source, target."""
    return pl.DataFrame(
        {
            "id": [f"{pool}-{index:06d}" for index in range(len(pairs))],
            "source": [de for de, _ in pairs],
            "target": [en for _, en in pairs],
        },
        schema={"id": pl.String, "source": pl.String, "target": pl.String},
    )


def _write_outputs(
    pools: dict[str, list[tuple[str, str]]], out_dir: Path, report: dict, report_path: Path
) -> None:
    """Write every pool and then the report; on failure remove the pool files written here."""
    written: list[Path] = []
    try:
        for pool in POOLS:
            path = out_dir / f"{pool}.parquet"
            write_parquet(pool_frame(pool, pools[pool]), path)
            written.append(path)
        write_json(report, report_path)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise


def prepare(
    corpus: dict,
    cleaning: CleaningConfig,
    sizes: dict[str, int | None],
    seed: int,
    out_dir: Path,
    report_path: Path,
    archive: Path | None = None,
    files: dict[str, Path] | None = None,
    request: dict | None = None,
) -> dict:
    """Read, clean and split the corpus; write `<out_dir>/<pool>.parquet` and the JSON report.
    `request`, what in the config the pools depend on, is recorded in the report.

    `archive` is the downloaded .tgz of a `europarl` corpus; `files` maps the file names of a
    `multi30k` corpus (`<split>.<lang>.gz`) to their downloaded paths.

    Everything is read and validated before the first file is written, so a bad input leaves
    no output behind. Pools missing from `sizes` are written empty. Returns the report.
    """
    out_dir, report_path = Path(out_dir), Path(report_path)
    _check_sizes(sizes)  # before reading a large corpus, not after

    test_set = _test_set(corpus, files)
    test_pairs: list[tuple[str, str]] | None = None
    test_report: dict | None = None
    if test_set is not None:
        # A published test set is scored as published: normalised, and only empty or
        # duplicate pairs dropped, whatever the length rules for training data say.
        test_name, test_read = test_set
        as_published = CleaningConfig(max_words=10**9, max_length_ratio=float("inf"))
        test_pairs, test_report = clean(test_read, as_published)
        _log_report(f"test set {test_name}", test_report)
        if not test_pairs:
            left = _what_cleaning_left(test_report)
            raise CorpusError(f"{test_name}: no test pairs left after cleaning ({left})")

    exclude = frozenset(de for de, _ in test_pairs) if test_pairs else frozenset()
    corpus_name, corpus_pairs = _read_corpus(corpus, archive, files)
    packed, corpus_report = _clean_packed(corpus_pairs, cleaning, exclude)
    _log_report("corpus", corpus_report)
    if not packed:
        raise CorpusError(
            f"{corpus_name}: no pairs left after cleaning ({_what_cleaning_left(corpus_report)})"
        )

    # A separate test set replaces the test pool carved from the corpus.
    carve_sizes = {pool: size for pool, size in sizes.items() if not (test_set and pool == "test")}
    try:
        carved = split_pools(packed, carve_sizes, seed, corpus_report)
    except CorpusError as err:
        raise CorpusError(f"{corpus_name}: {err} ({_what_cleaning_left(corpus_report)})") from None
    log.info(
        "corpus: skipped %d pairs whose source is in the test or dev pool",
        corpus_report["held_out_sources"],
    )
    pools = {pool: _unpack(items) for pool, items in carved.items()}
    del packed, carved
    if test_pairs is not None:
        pools["test"] = test_pairs
    for pool in POOLS:
        pools.setdefault(pool, [])
        log.info("pool %s: %d pairs", pool, len(pools[pool]))
        if not pools[pool]:
            log.warning("pool %s is empty", pool)

    report = {
        "corpus": corpus_report,
        "test": test_report,
        "pools": {pool: len(pools[pool]) for pool in POOLS},
        "seed": seed,
        "sizes": sizes,
        "request": request,
    }
    _write_outputs(pools, out_dir, report, report_path)
    return report
