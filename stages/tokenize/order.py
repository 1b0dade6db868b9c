"""The data order: ``order/global_indices.npy``, as OLMo's ``global_indices.npy``.

Windows are the non-overlapping ``seq_len``-token windows of the shards in index order (each
shard's tail shorter than ``seq_len`` is dropped; windows cross document boundaries), numbered
0, 1, ... shard by shard. The order is ``epochs`` consecutive seeded permutations of them:
epoch ``e`` is ``np.random.default_rng([seed, e]).permutation(windows)``, the order pretrain
drew itself before the file existed. Sample ``i`` of a pretraining run is window
``global_indices[i]``.
"""

from __future__ import annotations

import pathlib

import numpy as np

ORDER_PATH = "order/global_indices.npy"


def window_count(tokens: list[int], seq_len: int) -> int:
    """Windows of ``seq_len`` tokens over shards holding ``tokens`` tokens each."""
    return sum(count // seq_len for count in tokens)


def global_indices(windows: int, epochs: int, seed: int) -> np.ndarray:
    """``epochs`` seeded permutations of ``range(windows)``, concatenated; uint32 (uint64 once
    an index needs it)."""
    dtype = np.uint32 if windows <= np.iinfo(np.uint32).max else np.uint64
    out = np.empty(windows * epochs, dtype=dtype)
    for epoch in range(epochs):
        permutation = np.random.default_rng([seed, epoch]).permutation(windows)
        out[epoch * windows : (epoch + 1) * windows] = permutation
    return out


def write_order(
    artifact: pathlib.Path, tokens: list[int], seq_len: int, epochs: int, seed: int
) -> dict:
    """Write the order file into ``artifact``; return its ``shards/index.json`` entry."""
    windows = window_count(tokens, seq_len)
    indices = global_indices(windows, epochs, seed)
    path = artifact / ORDER_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, indices, allow_pickle=False)
    return {
        "path": ORDER_PATH,
        "seq_len": seq_len,
        "epochs": epochs,
        "windows": windows,
        "dtype": str(indices.dtype),
    }
