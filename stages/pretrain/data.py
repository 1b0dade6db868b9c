"""Fixed-length training windows served from the tokenize stage's uint16 memmap shards."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from stages.common.training import TrainingInputError


def open_shards(tokenize_dir: Path, vocab_size: int) -> list[np.memmap]:
    """Memory-map every shard listed in shards/index.json, checking sizes and dtype."""
    index_path = tokenize_dir / "shards" / "index.json"
    if not index_path.is_file():
        raise TrainingInputError(f"{index_path} not found; pass the artifact of a tokenize job")
    index = json.loads(index_path.read_text("utf-8"))
    if index.get("dtype") != "uint16":
        raise TrainingInputError(f"{index_path}: dtype {index.get('dtype')!r}, expected 'uint16'")
    if index.get("vocab_size", vocab_size) > vocab_size:
        raise TrainingInputError(
            f"{index_path}: vocab_size {index['vocab_size']} exceeds the tokenizer's {vocab_size}"
        )
    shards = []
    for number, entry in enumerate(index.get("files", [])):
        path = tokenize_dir / entry["path"]
        if not path.is_file():
            raise TrainingInputError(f"{index_path}: files[{number}] {entry['path']} not found")
        data = np.memmap(path, dtype=np.dtype("<u2"), mode="r")
        if len(data) != entry["tokens"]:
            raise TrainingInputError(
                f"{path}: holds {len(data)} tokens, index.json says {entry['tokens']}"
            )
        shards.append(data)
    if not shards:
        raise TrainingInputError(f"{index_path}: lists no shard files")
    return shards


def window_starts(shards: list[np.memmap], seq_len: int) -> list[tuple[int, int]]:
    """(shard, offset) of every non-overlapping ``seq_len`` window (the tail is dropped)."""
    starts = [
        (number, offset)
        for number, shard in enumerate(shards)
        for offset in range(0, len(shard) - seq_len + 1, seq_len)
    ]
    if not starts:
        total = sum(len(s) for s in shards)
        raise TrainingInputError(
            f"the shards hold {total} tokens, fewer than one window of pretrain.seq_len={seq_len}; "
            "lower seq_len or make more pretraining data"
        )
    return starts


def make_dataset(shards: list[np.memmap], seq_len: int, seed: int) -> Any:
    """An endless stream of windows: each epoch visits every window once in a seeded order."""
    import torch

    starts = window_starts(shards, seq_len)

    class Windows(torch.utils.data.IterableDataset):
        def __iter__(self):
            epoch = 0
            while True:
                # One generator per epoch: the order never depends on how far a run got.
                order = np.random.default_rng([seed, epoch]).permutation(len(starts))
                for position in order:
                    shard, offset = starts[position]
                    ids = torch.from_numpy(
                        shards[shard][offset : offset + seq_len].astype(np.int64)
                    )
                    yield {"input_ids": ids, "labels": ids.clone()}
                epoch += 1

    return Windows(), len(starts)
