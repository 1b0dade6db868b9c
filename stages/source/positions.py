"""Global positions of a source: its files' positions one after the other, in source.json order.

A shard of a source is a global range ``[start, stop)``; ``file_ranges`` splits it into per-file
ranges and ``iter_source`` reads them, so ranges that partition ``[0, rows)`` read every
position of the source exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from stages.source.readers import Record, Reject, iter_records


def file_ranges(
    files: list[Mapping[str, Any]], start: int, stop: int
) -> list[tuple[str, int, int]]:
    """``(path, a, b)`` per file overlapping the global range (``files``: source.json's)."""
    ranges, first = [], 0
    for entry in files:
        rows = int(entry["rows"])
        a, b = max(start, first), min(stop, first + rows)
        if a < b:
            ranges.append((entry["path"], a - first, b - first))
        first += rows
    return ranges


def iter_source(
    record: Mapping[str, Any], start: int = 0, stop: int | None = None
) -> Iterator[tuple[int, Record | Reject]]:
    """``(global position, item)`` for ``[start, stop)`` of a source (``record``: source.json)."""
    stop = int(record["rows"]) if stop is None else stop
    offsets, offset = {}, 0
    for entry in record["files"]:
        offsets[entry["path"]], offset = offset, offset + int(entry["rows"])
    for path, a, b in file_ranges(record["files"], start, stop):
        items = iter_records(Path(path), record["format"], a, b, record.get("split"))
        yield from enumerate(items, offsets[path] + a)
