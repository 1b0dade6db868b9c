"""Records of one source file, by position: jsonl (plain, .gz, .zst), parquet, hf_disk.

The contract the sharded curation relies on: a file has ``count_rows(file, fmt)`` positions,
and ``iter_records(file, fmt, a, b)`` yields exactly ``b - a`` items for ``0 <= a <= b <=
count_rows``, one per position in order, each a ``Record`` or a ``Reject``; so ``[0, k)`` and
``[k, n)`` together are ``[0, n)``. Bad input is a Reject at its position, never an exception
and never skipped. Positions: jsonl, every line that is not all ASCII whitespace (blank lines
are no records), plus one for a broken compressed stream; parquet and hf_disk, every row. A
file with no record at all is one position, ``Reject(file, 0, "empty file")``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from stages.source import jsonl
from stages.source.files import SourceError

BATCH = 4096  # rows converted to Python at a time (parquet, hf_disk)


@dataclass(frozen=True)
class Record:
    """A row read from ``file``: ``line`` is the 1-based physical line (jsonl) or row number."""

    file: str
    line: int
    row: dict


@dataclass(frozen=True)
class Reject:
    """A position of ``file`` that is no usable row, and why."""

    file: str
    line: int
    reason: str


EMPTY = "empty file"
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # only then is the slow check needed


def count_rows(file: Path, fmt: str, split: str | None = None) -> int:
    """The number of positions of ``file`` (see the module docstring)."""
    if fmt == "jsonl":
        return max(1, sum(1 for _ in jsonl.lines(Path(file))))
    if fmt == "parquet":
        opened = _parquet(Path(file))
        return 1 if isinstance(opened, str) else max(1, opened.metadata.num_rows)
    if fmt == "hf_disk":
        return max(1, _hf_dataset(Path(file), split).num_rows)
    raise SourceError(f"{file}: unknown format {fmt!r}; use jsonl, parquet or hf_disk")


def iter_records(
    file: Path, fmt: str, start: int = 0, stop: int | None = None, split: str | None = None
) -> Iterator[Record | Reject]:
    """Positions ``[start, stop)`` of ``file`` (``stop`` None: to the end)."""
    if start < 0 or (stop is not None and stop < start):
        raise ValueError(f"bad position range [{start}, {stop})")
    if stop == start:
        return iter(())
    if fmt == "jsonl":
        return _jsonl_records(Path(file), start, stop)
    if fmt == "parquet":
        return _parquet_records(Path(file), start, stop)
    if fmt == "hf_disk":
        return _hf_records(Path(file), start, stop, split)
    raise SourceError(f"{file}: unknown format {fmt!r}; use jsonl, parquet or hf_disk")


def parse_line(name: str, line: int, offset: int, data: bytes) -> Record | Reject:
    """One jsonl line as a Record, or a Reject saying what is wrong with it."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        return Reject(
            name, line, f"invalid UTF-8 at byte offset {offset + error.start} "
            f"(byte {error.start} of the line): {error.reason}"
        )  # fmt: skip
    if line == 1:
        text = text.removeprefix("\ufeff")  # a byte order mark is no JSON
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        return Reject(name, line, f"malformed JSON: {error.msg} (column {error.colno})")
    except RecursionError:
        return Reject(name, line, "malformed JSON: nested too deeply")
    if not isinstance(value, dict):
        return Reject(name, line, f"JSON {type(value).__name__} where an object was expected")
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value):
        return Reject(name, line, "a \\u escape of a lone surrogate (no valid Unicode text)")
    return Record(name, line, value)


def _has_lone_surrogate(value: dict) -> bool:
    """Whether a parsed line holds a lone surrogate (it could never be written as UTF-8)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _jsonl_records(file: Path, start: int, stop: int | None) -> Iterator[Record | Reject]:
    name, position = str(file), -1
    for position, (line, offset, data) in enumerate(jsonl.lines(file)):
        if stop is not None and position >= stop:
            return
        if position < start:
            continue
        if isinstance(data, jsonl.Damage):
            yield Reject(name, line, str(data))
        else:
            yield parse_line(name, line, offset, data)
    if position == -1 and start == 0:
        yield Reject(name, 0, EMPTY)


def _parquet(file: Path):
    """The opened ParquetFile, or why it cannot be opened (a str)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(file)
    except (pa.ArrowException, OSError) as error:
        return f"unreadable parquet file: {error}"


def _rows(table, offset: int, count: int) -> Iterator[dict]:
    for at in range(offset, offset + count, BATCH):
        yield from table.slice(at, min(BATCH, offset + count - at)).to_pylist()


def _parquet_records(file: Path, start: int, stop: int | None) -> Iterator[Record | Reject]:
    import pyarrow as pa

    name, opened = str(file), _parquet(file)
    if isinstance(opened, str) or opened.metadata.num_rows == 0:
        if start == 0:
            yield Reject(name, 0, EMPTY if not isinstance(opened, str) else opened)
        return
    first = 0  # position of the row group's first row
    for group in range(opened.metadata.num_row_groups):
        size = opened.metadata.row_group(group).num_rows
        lo, hi = max(start, first), min(first + size, stop if stop is not None else first + size)
        if lo < hi:  # row groups wholly before `start` (or after `stop`) are never read
            try:
                rows = _rows(opened.read_row_group(group), lo - first, hi - lo)
                for position, row in enumerate(rows, lo):
                    yield Record(name, position + 1, row)
            except (pa.ArrowException, OSError) as error:
                for position in range(lo, hi):
                    yield Reject(name, position + 1, f"unreadable row group {group}: {error}")
        first += size
        if stop is not None and first >= stop:
            return


def _hf_dataset(path: Path, split: str | None):
    """The Dataset saved at ``path`` (a DatasetDict's ``split``)."""
    import datasets

    loaded = datasets.load_from_disk(str(path))
    if isinstance(loaded, datasets.DatasetDict):
        if split is None or split not in loaded:
            what = "no split given" if split is None else f"no split {split!r}"
            raise SourceError(
                f"{path}: a DatasetDict and {what}; set the source's split to one of "
                + ", ".join(sorted(loaded))
            )
        return loaded[split]
    if split is not None:
        raise SourceError(f"{path}: a single Dataset, no splits; remove split={split!r}")
    return loaded


def _hf_records(
    path: Path, start: int, stop: int | None, split: str | None
) -> Iterator[Record | Reject]:
    dataset, name = _hf_dataset(path, split), str(path)
    if dataset.num_rows == 0:
        if start == 0:
            yield Reject(name, 0, EMPTY)
        return
    stop = dataset.num_rows if stop is None else min(stop, dataset.num_rows)
    table = dataset.with_format("arrow")
    for at in range(start, stop, BATCH):
        batch = table[at : min(at + BATCH, stop)]
        for position, row in enumerate(batch.to_pylist(), at):
            yield Record(name, position + 1, row)
