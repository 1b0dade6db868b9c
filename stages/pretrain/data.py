"""Fixed-length training windows served from the tokenize stage's memmap shards, in the order
of its data-order file (``order/global_indices.npy``, stages/tokenize/order.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from stages.common.training import TrainingInputError

SHARD_DTYPES = {"uint16": np.dtype("<u2"), "uint32": np.dtype("<u4")}
ORDER_DTYPES = (np.dtype("<u4"), np.dtype("<u8"))


def read_index(tokenize_dir: Path) -> dict[str, Any]:
    """``shards/index.json`` of a tokenize artifact."""
    index_path = tokenize_dir / "shards" / "index.json"
    if not index_path.is_file():
        raise TrainingInputError(f"{index_path} not found; pass the artifact of a tokenize job")
    return json.loads(index_path.read_text("utf-8"))


def open_shards(tokenize_dir: Path, vocab_size: int) -> list[np.memmap]:
    """Memory-map every shard listed in shards/index.json in its recorded dtype (uint16 or
    uint32), checking sizes."""
    index_path = tokenize_dir / "shards" / "index.json"
    index = read_index(tokenize_dir)
    dtype = SHARD_DTYPES.get(index.get("dtype"))
    if dtype is None:
        raise TrainingInputError(
            f"{index_path}: dtype {index.get('dtype')!r}, expected one of {sorted(SHARD_DTYPES)}"
        )
    if index.get("vocab_size", vocab_size) > vocab_size:
        raise TrainingInputError(
            f"{index_path}: vocab_size {index['vocab_size']} exceeds the tokenizer's {vocab_size}"
        )
    shards = []
    for number, entry in enumerate(index.get("files", [])):
        path = tokenize_dir / entry["path"]
        if not path.is_file():
            raise TrainingInputError(f"{index_path}: files[{number}] {entry['path']} not found")
        data = np.memmap(path, dtype=dtype, mode="r") if path.stat().st_size else np.zeros(0)
        if len(data) != entry["tokens"] or path.stat().st_size % dtype.itemsize:
            raise TrainingInputError(
                f"{path}: holds {path.stat().st_size / dtype.itemsize:g} tokens, index.json says "
                f"{entry['tokens']}"
            )
        shards.append(data)
    if not shards:
        raise TrainingInputError(f"{index_path}: lists no shard files")
    return shards


def window_starts(shards: list[np.memmap], seq_len: int) -> list[tuple[int, int]]:
    """(shard, offset) of every non-overlapping ``seq_len`` window (the tail is dropped), in
    window-number order (the numbers the order file holds)."""
    return [
        (number, offset)
        for number, shard in enumerate(shards)
        for offset in range(0, len(shard) - seq_len + 1, seq_len)
    ]


def _too_few(shards: list[np.memmap], seq_len: int) -> TrainingInputError:
    total = sum(len(s) for s in shards)
    return TrainingInputError(
        f"the shards hold {total} tokens, fewer than one window of pretrain.seq_len={seq_len}; "
        "lower seq_len or make more pretraining data"
    )


def open_order(
    tokenize_dir: Path, shards: list[np.memmap], seq_len: int, samples: int
) -> np.ndarray:
    """The data order (memory-mapped), checked against the shards and this run: cut for
    ``seq_len``, and at least ``samples`` (steps x global batch) long."""
    index = read_index(tokenize_dir)
    order = index.get("order")
    where = tokenize_dir / "shards" / "index.json"
    if not order:
        raise TrainingInputError(f"{where}: no data order; rerun the tokenize stage")
    if order["seq_len"] != seq_len:
        raise TrainingInputError(
            f"pretrain.seq_len={seq_len} but the tokenize artifact's data order is cut into "
            f"windows of {order['seq_len']} tokens (tokenize.seq_len); make them equal"
        )
    windows = sum(len(s) // seq_len for s in shards)
    if windows == 0:
        raise _too_few(shards, seq_len)
    indices = np.load(tokenize_dir / order["path"], mmap_mode="r", allow_pickle=False)
    if indices.dtype not in ORDER_DTYPES or indices.ndim != 1:
        raise TrainingInputError(f"{order['path']}: {indices.dtype} {indices.shape}, not uint32/64")
    if order["windows"] != windows or (len(indices) and int(indices.max()) >= windows):
        raise TrainingInputError(
            f"{order['path']}: made for {order['windows']} windows, the shards hold {windows}"
        )
    if len(indices) < samples:
        raise TrainingInputError(
            f"pretrain needs steps x batch_size = {samples} windows, the data order holds "
            f"{len(indices)} ({order['epochs']} epochs of {windows}); raise tokenize.epochs to "
            f"at least {-(-samples // windows)}"
        )
    return indices


def make_dataset(shards: list[np.memmap], seq_len: int, order: np.ndarray) -> Any:
    """The windows in data order: sample ``i`` is window ``order[i]`` (finite: the run stops
    at max_steps, and ``open_order`` checked that the order is long enough)."""
    import torch

    counts = np.array([len(s) // seq_len for s in shards], dtype=np.int64)
    first = np.concatenate([[0], np.cumsum(counts)])  # first window number of each shard
    if first[-1] == 0:
        raise _too_few(shards, seq_len)

    class Windows(torch.utils.data.IterableDataset):
        def __iter__(self):
            for window in order:
                shard = int(np.searchsorted(first, window, side="right")) - 1
                offset = (int(window) - int(first[shard])) * seq_len
                ids = torch.from_numpy(shards[shard][offset : offset + seq_len].astype(np.int64))
                yield {"input_ids": ids, "labels": ids.clone()}

    return Windows(), int(first[-1])
