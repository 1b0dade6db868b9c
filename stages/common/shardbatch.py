"""The shard batch a fan-out job (curate_shard, tokenize_shard) works on: [first, last) of N."""

from __future__ import annotations

import pathlib
from collections.abc import Mapping
from typing import Any

from stages.common.jsonl import write_json

BATCH_FILE = "batch.json"


def shard_batch(config: Mapping[str, Any], stage: str) -> tuple[int, int, int]:
    """``(first, last, shards)`` of the job's config, checked: 0 <= first < last <= shards."""
    first, last, shards = config["first"], config["last"], config["shards"]
    if not 0 <= first < last <= shards:
        raise ValueError(f"{stage}: shard range [{first}, {last}) is not within 0..{shards}")
    return first, last, shards


def write_batch(output_dir: pathlib.Path, first: int, last: int, shards: int) -> None:
    """``batch.json``: which shards this job wrote (the gather checks the batches tile 0..N)."""
    write_json(output_dir / BATCH_FILE, {"first": first, "last": last, "shards": shards})
