"""OLMo-style token shards: raw little-endian uint16 ids, no header, eos after every doc."""

from __future__ import annotations

import pathlib

import numpy as np

UINT16_LIMIT = 1 << 16


def write_shards(
    docs: list[list[int]], eos_id: int, out_dir: pathlib.Path, max_tokens: int
) -> list[dict]:
    """Write ``part-XXXXX.npy`` files of whole documents (each followed by ``eos_id``); a new
    part starts before a document that would push the current one past ``max_tokens`` (a
    longer document gets a part of its own). Returns the index entries."""
    out_dir.mkdir(parents=True, exist_ok=True)
    parts: list[list[list[int]]] = [[]]
    size = 0
    for doc in docs:
        length = len(doc) + 1
        if parts[-1] and size + length > max_tokens:
            parts.append([])
            size = 0
        parts[-1].append(doc)
        size += length
    files = []
    for number, part in enumerate(parts):
        ids = np.fromiter((t for doc in part for t in (*doc, eos_id)), dtype=np.int64, count=-1)
        if ids.size and (ids.min() < 0 or ids.max() >= UINT16_LIMIT):
            raise ValueError("tokenize: token id outside uint16; lower vocab_size below 65536")
        name = f"part-{number:05d}.npy"
        ids.astype("<u2").tofile(out_dir / name)
        files.append({"path": f"shards/{name}", "tokens": int(ids.size), "documents": len(part)})
    return files
