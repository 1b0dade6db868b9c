"""OLMo-style token shards: raw little-endian uint16 or uint32 ids, no header, eos after every
document, written part by part as the documents stream in. Each part's index entry records the
runs of consecutive same-source documents it holds (``sources``), so consumers locate a source's
tokens without re-deriving the stream or splitting at eos (a document may contain eos)."""

from __future__ import annotations

import pathlib
from collections.abc import Iterable, Sequence

import numpy as np

UINT16_LIMIT = 1 << 16
DTYPES = {"uint16": np.dtype("<u2"), "uint32": np.dtype("<u4")}


def shard_dtype(vocab_size: int) -> str:
    """``uint16`` while every id fits (a vocabulary of at most 65,535), else ``uint32``."""
    return "uint16" if vocab_size < UINT16_LIMIT else "uint32"


class ShardWriter:
    """Writes ``part-XXXXX.npy`` files of whole documents (each followed by ``eos_id``); a new
    part starts before a document that would push the current one past ``max_tokens`` (a
    longer document gets a part of its own). Only the current part is held in memory.

    Each index entry: ``path``, ``tokens``, ``documents`` and ``sources``, the part's runs of
    consecutive same-source documents in stream order (``{source, documents, tokens}``, eos
    included; a source may have several runs when the stream returns to it)."""

    def __init__(self, out_dir: pathlib.Path, eos_id: int, max_tokens: int, dtype: str):
        out_dir.mkdir(parents=True, exist_ok=True)
        self.out_dir, self.eos_id, self.max_tokens = out_dir, eos_id, max_tokens
        self.dtype = dtype
        self.files: list[dict] = []
        self._part: list[np.ndarray] = []
        self._runs: list[dict] = []  # the current part's source runs
        self._size = 0

    def add(self, docs: Iterable[list[int]], sources: Sequence[str]) -> None:
        """Append documents (token ids without eos) of ``sources`` (one each) in order."""
        for doc, source in zip(docs, sources, strict=True):
            self.add_ended(np.array([*doc, self.eos_id], dtype=np.int64), source)

    def add_ended(self, ids: np.ndarray, source: str) -> None:
        """Append one document of ``source`` whose ids already end with eos (an encoded
        shard's)."""
        if self._part and self._size + len(ids) > self.max_tokens:
            self._flush()
        self._part.append(ids)
        self._size += len(ids)
        if not self._runs or self._runs[-1]["source"] != source:
            self._runs.append({"source": source, "documents": 0, "tokens": 0})
        self._runs[-1]["documents"] += 1
        self._runs[-1]["tokens"] += len(ids)

    def close(self) -> list[dict]:
        """Write the last part (an empty corpus still gets one empty part); the index entries."""
        if self._part or not self.files:
            self._flush()
        return self.files

    def _flush(self) -> None:
        ids = np.concatenate(self._part) if self._part else np.zeros(0, dtype=np.int64)
        limit = np.iinfo(DTYPES[self.dtype]).max
        if ids.size and (ids.min() < 0 or ids.max() > limit):
            raise ValueError(
                f"tokenize: token id {int(ids.max())} outside {self.dtype}; lower vocab_size "
                "below 65536"
            )
        name = f"part-{len(self.files):05d}.npy"
        ids.astype(DTYPES[self.dtype]).tofile(self.out_dir / name)
        self.files.append(
            {
                "path": f"shards/{name}",
                "tokens": int(ids.size),
                "documents": len(self._part),
                "sources": self._runs,
            }
        )
        self._part, self._runs, self._size = [], [], 0
