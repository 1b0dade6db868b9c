"""Curate shards: every position of a shard read once, checked, normalized, filtered, masked,
hashed and scanned for eval n-grams; nothing removed yet.

Decisions that need all shards (exact and fuzzy duplicates, decontamination, mixing) are the
gather's (stages/curate/gather.py). A shard directory holds, per kind, ``<kind>.jsonl`` with one
line per position (status ``ok`` with the normalized row, its content hash, UTF-8 size and
eval hits, or ``rejected`` / ``empty`` / ``filtered`` with the reason), ``<kind>.bands.npy`` +
``<kind>.bandpos.npy`` (MinHash band keys of the ok pretraining documents and their positions),
and ``scan.json`` (the shard's decontamination scan).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from stages.common.job import Input
from stages.common.jsonl import write_json
from stages.common.progress import Progress
from stages.curate.decontaminate import EvalIndex, ShardScan
from stages.curate.evalsets import load_eval, load_spec_eval
from stages.curate.feeds import (
    KINDS,
    WORLD,
    Feed,
    Position,
    iter_positions,
    plan_feeds,
    shard_range,
)
from stages.curate.filters import apply_filters, build_filters
from stages.curate.minhash import MinHashConfig, band_keys
from stages.curate.normalize import MESSAGE_KEYS, REQUIRED, content_hash, normalize_row, text_fields
from stages.curate.pii import mask_pii
from stages.source.readers import Reject
from stages.source.schemas import RowError, to_internal

KIND_BITS = 40  # scan doc keys: kind index << KIND_BITS | position (2^40 positions per kind)


def doc_key(kind: str, position: int) -> int:
    return KINDS.index(kind) << KIND_BITS | position


def split_key(key: int) -> tuple[str, int]:
    return KINDS[key >> KIND_BITS], key & ((1 << KIND_BITS) - 1)


def eval_instances(inputs: Mapping[str, Input]) -> dict[str, list[tuple[str, list[str]]]]:
    """Every eval instance the recipe decontaminates against: the world's eval sets and the
    imported spec datasets (evaldata)."""
    instances = load_eval(inputs["world"].path)
    if "evaldata" in inputs:
        instances |= load_spec_eval(inputs["evaldata"].path)[0]
    return instances


def world_row(kind: str, row: dict) -> dict:
    """A world training row as it is, once its fields have the types the later steps need."""
    missing = [key for key in REQUIRED[kind] if key not in row]
    if missing:
        raise RowError(f"missing key(s) {missing}")
    if kind == "pretrain" and not isinstance(row["text"], str):
        raise RowError("'text' must be a string")
    for key in MESSAGE_KEYS[kind]:
        messages = row[key]
        if not isinstance(messages, list) or not all(
            isinstance(m, dict) and isinstance(m.get("content"), str) and "role" in m
            for m in messages
        ):
            raise RowError(f"{key!r} must be a list of {{'role', 'content': str}}")
    return row


class ShardCurator:
    """What every shard of a job shares: the config, feeds, eval index and filters."""

    def __init__(self, config: Mapping[str, Any], inputs: Mapping[str, Input]):
        self.config = config
        self.feeds = plan_feeds(inputs)
        self.index = EvalIndex.build(eval_instances(inputs), config["ngram"])
        fuzzy = config["fuzzy_dedup"]
        self.minhash = MinHashConfig(
            ngram=fuzzy["ngram"], bands=fuzzy["bands"], rows=fuzzy["rows"], seed=config["seed"]
        )
        self._filters: dict[str, list] = {}

    def filters(self, feed: Feed) -> list:
        """The quality filters of a pretraining feed: its own `filters`, else curate.filters."""
        if feed.name not in self._filters:
            own = feed.source.get("filters")
            spec, where = (
                (own, f"sources.pretrain.{feed.name}.filters")
                if own is not None
                else (self.config["filters"], "curate.filters")
            )
            self._filters[feed.name] = build_filters(spec, where)
        return self._filters[feed.name]

    def positions(self, shard: int) -> int:
        """How many positions (documents, all kinds) shard ``shard`` holds."""
        ranges = [
            shard_range(sum(feed.rows for feed in feeds), shard, self.config["shards"])
            for feeds in self.feeds.values()
        ]
        return sum(stop - start for start, stop in ranges)

    def curate(
        self, shard: int, out: Path, progress: Progress | None = None
    ) -> dict[str, dict[str, int]]:
        """Write shard ``shard`` of ``config['shards']`` into ``out``; return its counts."""
        out.mkdir(parents=True)
        scan = ShardScan(self.index, self.config["threshold"])
        counts = {}
        for kind, feeds in self.feeds.items():
            total = sum(feed.rows for feed in feeds)
            start, stop = shard_range(total, shard, self.config["shards"])
            counts[kind] = self._curate_kind(kind, feeds, start, stop, scan, out, progress)
        (out / "scan.json").write_text(json.dumps(scan.to_json(), sort_keys=True), "utf-8")
        write_json(out / "shard.json", {"shard": shard, "shards": self.config["shards"]})
        return counts

    def _curate_kind(
        self, kind: str, feeds: list[Feed], start: int, stop: int, scan: ShardScan, out: Path,
        progress: Progress | None = None,
    ) -> dict[str, int]:  # fmt: skip
        counts = dict.fromkeys(("positions", "ok", "rejected", "empty", "filtered"), 0)
        bands, band_positions = [], []
        with (out / f"{kind}.jsonl").open("w", encoding="utf-8", newline="\n") as handle:
            for position in iter_positions(feeds, start, stop):
                line = self._curate_position(kind, position)
                counts["positions"] += 1
                counts[line["status"]] += 1
                if line["status"] == "ok":
                    row = line["row"]
                    key = doc_key(kind, position.index)
                    line["hits"] = scan.add(key, text_fields(kind, row))
                    if kind == "pretrain":
                        bands.append(band_keys(row["text"], self.minhash))
                        band_positions.append(position.index)
                handle.write(json.dumps(line, sort_keys=True, ensure_ascii=False) + "\n")
                if progress is not None:
                    progress.update()
        if kind == "pretrain":
            shape = (len(bands), self.minhash.bands)
            keys = np.stack(bands) if bands else np.zeros(shape, dtype=np.uint64)
            np.save(out / f"{kind}.bands.npy", keys.astype(np.uint64))
            np.save(out / f"{kind}.bandpos.npy", np.asarray(band_positions, dtype=np.int64))
        return counts

    def _curate_position(self, kind: str, position: Position) -> dict[str, Any]:
        """The shard line of one position (everything but its eval hits)."""
        feed, item = position.feed, position.item
        line: dict[str, Any] = {
            "pos": position.index,
            "local": position.local,
            "source": feed.name,
            "file": position.file.shown,
            "line": item.line,
        }
        if isinstance(item, Reject):
            return line | {"status": "rejected", "reason": item.reason}
        try:
            if feed.name == WORLD and not feed.source:
                row = world_row(kind, item.row)
            else:
                row = to_internal(kind, item.row, feed.source, position.local)
        except RowError as error:
            return line | {"status": "rejected", "reason": str(error)}
        line["id"] = row["id"]
        row = normalize_row(kind, row, self.config["unicode_form"])
        if row is None:
            return line | {"status": "empty", "reason": "a text is empty after normalization"}
        if kind == "pretrain":
            text, reason = apply_filters(self.filters(feed), row["text"])
            if reason is not None or not text.strip():
                return line | {"status": "filtered", "reason": reason or "empty after filters"}
            row["text"] = text
            if self.config["pii"]:
                row["text"], masked = mask_pii(row["text"])
                if any(masked.values()):
                    line["pii"] = {k: v for k, v in masked.items() if v}
        size = sum(len(text.encode("utf-8")) for text in text_fields(kind, row))
        return line | {"status": "ok", "row": row, "hash": content_hash(row), "bytes": size}


def curate_shards(
    config: Mapping[str, Any], inputs: Mapping[str, Input], out: Path, first: int, last: int,
    name: str = "curate",
) -> dict[str, Any]:  # fmt: skip
    """Curate shards [first, last) into ``out/shard-<i>/``; return summed counts. Progress
    (``name``: the stage) counts documents over all shards of the job."""
    curator = ShardCurator(config, inputs)
    totals: dict[str, int] = {}
    positions = sum(curator.positions(shard) for shard in range(first, last))
    with Progress(name, positions, "document") as progress:
        for shard in range(first, last):
            counts_of = curator.curate(shard, out / shard_dir_name(shard), progress)
            for kind, counts in counts_of.items():
                for key, value in counts.items():
                    totals[f"{kind}_{key}"] = totals.get(f"{kind}_{key}", 0) + value
    return totals


def shard_dir_name(shard: int) -> str:
    return f"shard-{shard:06d}"
