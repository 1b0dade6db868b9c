"""Where each data kind's documents come from, and their positions.

A *feed* is one source of one kind: a `sources` entry (its source artifact's `source.json`) or,
for a kind the recipe gives no sources for, the world's `train/<kind>.jsonl`. A kind's documents
are numbered by *position* across its feeds (sources in name order, each source's files
sorted, each file's records in order): shard ``i`` of ``N`` holds the positions
``[i * T // N, (i + 1) * T // N)`` of a kind with ``T`` positions, so any ``N`` covers the same
documents in the same order and the gather can restore one global order.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stages.common.job import Input
from stages.source.readers import Record, Reject, count_rows, iter_records

KINDS = ("pretrain", "midtrain", "sft", "preference", "rlvr")
WORLD = "world"  # the feed name of the world's training sets


class FeedError(ValueError):
    """A source file differs from what its source job recorded (the message says what)."""


@dataclass(frozen=True)
class FeedFile:
    path: Path
    rows: int
    shown: str  # the path as errors and rejects name it (the user's path, not a scratch copy)


@dataclass(frozen=True)
class Feed:
    """One source of one kind: its files and positions; ``source`` is its `sources` entry
    ({} for the world's training set)."""

    name: str
    kind: str
    format: str
    files: tuple[FeedFile, ...]
    source: Mapping[str, Any] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)


def _checked_file(entry: Mapping[str, Any], where: str) -> FeedFile:
    """A file of a source artifact, refused when its size changed since it was hashed
    (re-hashing every file in every shard job would cost N full reads; a same-size edit is
    found by re-hashing: `reprolm rebuild` of the source job, or `reprolm audit`)."""
    path = Path(entry["path"])
    try:
        stat = path.stat()
    except OSError as error:
        raise FeedError(f"{where}: {path}: {error.strerror}; restore the file") from None
    if path.is_file() and stat.st_size != entry["size"]:
        raise FeedError(
            f"{where}: {path} changed since its source job hashed it (size {entry['size']} -> "
            f"{stat.st_size}); rerun that job (snakemake --forcerun source) so lineage names "
            "the bytes curated"
        )
    return FeedFile(path, int(entry["rows"]), str(path))


def source_feed(artifact: Input) -> Feed:
    """The feed of a source artifact (stages/source: source.json)."""
    import json

    record = json.loads((artifact.path / "source.json").read_text(encoding="utf-8"))
    where = f"sources.{record['kind']}: {record['name']}"
    files = tuple(_checked_file(entry, where) for entry in record["files"])
    return Feed(record["name"], record["kind"], record["format"], files, record)


def world_feed(world: Path, kind: str) -> Feed | None:
    """The world's training set of ``kind`` as a feed (None when the world has none)."""
    path = world / "train" / f"{kind}.jsonl"
    if not path.is_file():
        return None
    shown = os.path.relpath(path) if not path.is_absolute() else str(path)
    return Feed(WORLD, kind, "jsonl", (FeedFile(path, count_rows(path, "jsonl"), shown),))


def plan_feeds(inputs: Mapping[str, Input]) -> dict[str, list[Feed]]:
    """Kind -> its feeds: the sources given for it (in name order), else the world's training
    set of that kind."""
    given: dict[str, list[Feed]] = {}
    for name in sorted(inputs):
        if name.startswith("source_"):
            feed = source_feed(inputs[name])
            given.setdefault(feed.kind, []).append(feed)
    feeds: dict[str, list[Feed]] = {}
    for kind in KINDS:
        if kind in given:
            feeds[kind] = given[kind]
        elif "world" in inputs and (feed := world_feed(inputs["world"].path, kind)) is not None:
            feeds[kind] = [feed]
    return feeds


def shard_range(total: int, shard: int, shards: int) -> tuple[int, int]:
    """Positions [start, stop) of ``shard`` of ``shards`` over ``total`` positions."""
    return shard * total // shards, (shard + 1) * total // shards


@dataclass(frozen=True)
class Position:
    """One position of a kind: global (``index``) and within its feed (``local``)."""

    index: int
    local: int
    feed: Feed
    file: FeedFile
    item: Record | Reject


def iter_positions(feeds: list[Feed], start: int, stop: int) -> Iterator[Position]:
    """The positions [start, stop) of a kind, in order."""
    offset = 0
    for feed in feeds:
        feed_offset = offset
        for file in feed.files:
            lo, hi = max(start, offset), min(stop, offset + file.rows)
            if lo < hi:
                split = feed.source.get("split")
                items = iter_records(file.path, feed.format, lo - offset, hi - offset, split=split)
                for index, item in enumerate(items, lo):
                    yield Position(index, index - feed_offset, feed, file, item)
            offset += file.rows
            if offset >= stop:
                return
