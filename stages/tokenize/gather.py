"""The tokenize gather: the encoded shards of the tokenize_shard jobs (inputs ``shard_*``),
streamed in position order into the token shards, exactly as the single job writes them."""

from __future__ import annotations

import json
import pathlib

from stages.common.job import Input
from stages.tokenize.documents import count_document
from stages.tokenize.encoded import read_documents
from stages.tokenize.shards import ShardWriter


class GatherError(ValueError):
    """The shard inputs do not make up the documents 0..T-1 of one tokenizer."""


def encoded_dirs(
    inputs: dict[str, Input], shards: int, eos_id: int, dtype: str
) -> list[pathlib.Path]:
    """The encoded shard directories in shard order, checked to be shards 0..shards-1 of one
    stream, encoded with this tokenizer's eos and dtype."""
    found = [
        (json.loads((d / "shard.json").read_text("utf-8")), d)
        for name in sorted(inputs)
        if name.startswith("shard_")
        for d in (inputs[name].path / "shards").iterdir()
    ]
    found.sort(key=lambda item: item[0]["shard"])
    records = [record for record, _ in found]
    if [r["shard"] for r in records] != list(range(shards)) or any(
        r["shards"] != shards for r in records
    ):
        raise GatherError(
            f"tokenize: the shard inputs hold shards {[r['shard'] for r in records]} of "
            f"{sorted({r['shards'] for r in records})}, not 0..{shards - 1} of {shards}"
        )
    stops = [0, *(r["stop"] for r in records)]
    totals = {r["total"] for r in records}
    if [r["start"] for r in records] != stops[:-1] or totals != {stops[-1]}:
        raise GatherError("tokenize: the shard inputs' positions are not one contiguous stream")
    for record, directory in found:
        if (record["eos_token_id"], record["dtype"]) != (eos_id, dtype):
            raise GatherError(
                f"tokenize: {directory} was encoded with eos {record['eos_token_id']} as "
                f"{record['dtype']}, the tokenizer has eos {eos_id} ({dtype})"
            )
    return [directory for _, directory in found]


def gather_encoded(dirs: list[pathlib.Path], writer: ShardWriter) -> tuple[dict, int]:
    """Stream every document of ``dirs`` into ``writer``; (per-source counts, characters)."""
    per_source: dict[str, dict[str, int]] = {}
    chars = 0
    for directory in dirs:
        for ids, source in read_documents(directory):
            writer.add_ended(ids, source)
            count_document(per_source, source, len(ids))
        chars += json.loads((directory / "shard.json").read_text("utf-8"))["chars"]
    return per_source, chars
