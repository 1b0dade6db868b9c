"""curate_shard stage: curate shards [first, last) of `curate.shards` into ``shards/``.

Each shard's positions are read once and checked, normalized, filtered, masked, hashed and
scanned for eval n-grams (stages/curate/shard.py); the `curate` job gathers all shards.
"""

from __future__ import annotations

import pathlib

from stages.common.job import Input, JobContext
from stages.common.shardbatch import shard_batch, write_batch
from stages.curate.shard import curate_shards


def run(
    config: dict, inputs: dict[str, Input], output_dir: pathlib.Path, context: JobContext
) -> dict:
    """Write shards/shard-<i>/ for every shard of the batch; return the summed counts."""
    if "world" not in inputs:
        raise KeyError("curate_shard: needs input 'world' (a world artifact: its eval sets)")
    first, last, shards = shard_batch(config, "curate_shard")
    counts = curate_shards(config, inputs, output_dir / "shards", first, last, "curate_shard")
    write_batch(output_dir, first, last, shards)
    return counts
