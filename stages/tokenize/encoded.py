"""Encoded shards, as tokenize_shard writes them and tokenize gathers them.

``shards/shard-<i>/`` holds, for the documents at shard ``i``'s positions in order:
``tokens.npy`` (their token ids, each document followed by eos, in the shard dtype),
``lengths.npy`` (tokens per document, eos included; int64), ``sources.npy`` (the index of each
document's source in ``shard.json``'s ``sources``; uint16) and ``shard.json`` (shard, shards,
positions, counts, the tokenizer's eos id, vocabulary size and dtype). Each ``.npy`` is written
as the documents stream in (its header is filled in at the end), so memory stays bounded.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator

import numpy as np

from stages.tokenize.shards import DTYPES

HEADER_BYTES = 128  # a 1-D .npy header (format 1.0) of any length is padded to 128 bytes


class NpyStream:
    """A 1-D ``.npy`` file appended to chunk by chunk."""

    def __init__(self, path: pathlib.Path, dtype: np.dtype):
        self.path, self.dtype, self.size = path, np.dtype(dtype), 0
        self._handle = path.open("wb")
        self._handle.write(b"\0" * HEADER_BYTES)

    def append(self, values: np.ndarray) -> None:
        self._handle.write(np.ascontiguousarray(values, dtype=self.dtype).tobytes())
        self.size += len(values)

    def close(self) -> None:
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False}
        self._handle.seek(0)
        np.lib.format.write_array_header_1_0(self._handle, {**header, "shape": (self.size,)})
        if self._handle.tell() != HEADER_BYTES:
            raise RuntimeError(f"{self.path}: unexpected .npy header size {self._handle.tell()}")
        self._handle.close()


class EncodedShardWriter:
    """Writes one ``shard-<i>/`` directory from batches of encoded documents."""

    def __init__(self, out_dir: pathlib.Path, dtype: str, eos_id: int):
        out_dir.mkdir(parents=True)
        self.out_dir, self.dtype, self.eos_id = out_dir, dtype, eos_id
        self.limit = int(np.iinfo(DTYPES[dtype]).max)
        self.tokens = NpyStream(out_dir / "tokens.npy", DTYPES[dtype])
        self.lengths = NpyStream(out_dir / "lengths.npy", np.dtype("<i8"))
        self.codes = NpyStream(out_dir / "sources.npy", np.dtype("<u2"))
        self.sources: list[str] = []
        self.chars = 0

    def add(self, encoded: list[list[int]], sources: list[str], chars: int) -> None:
        """Append documents (token ids without eos) and their sources, in position order."""
        for ids in encoded:
            if ids and (min(ids) < 0 or max(ids) > self.limit):
                raise ValueError(f"tokenize_shard: token id {max(ids)} outside {self.dtype}")
            self.tokens.append(np.array([*ids, self.eos_id], dtype=np.int64))
        self.lengths.append(np.array([len(ids) + 1 for ids in encoded], dtype=np.int64))
        for source in sources:
            if source not in self.sources:
                self.sources.append(source)
        self.codes.append(np.array([self.sources.index(s) for s in sources], dtype=np.int64))
        self.chars += chars

    def close(self, record: dict) -> dict:
        """Finish the files and write ``shard.json`` (``record`` plus the counts)."""
        for stream in (self.tokens, self.lengths, self.codes):
            stream.close()
        record = {
            **record,
            "documents": self.lengths.size,
            "tokens": self.tokens.size,
            "chars": self.chars,
            "dtype": self.dtype,
            "eos_token_id": self.eos_id,
            "sources": self.sources,
        }
        (self.out_dir / "shard.json").write_text(json.dumps(record, indent=2, sort_keys=True))
        return record


def read_documents(shard_dir: pathlib.Path) -> Iterator[tuple[np.ndarray, str]]:
    """(token ids with eos, source) of each document of an encoded shard, in order; the ids
    are read from a memory map, a document at a time."""
    record = json.loads((shard_dir / "shard.json").read_text("utf-8"))
    tokens = np.load(shard_dir / "tokens.npy", mmap_mode="r", allow_pickle=False)
    lengths = np.load(shard_dir / "lengths.npy", allow_pickle=False)
    codes = np.load(shard_dir / "sources.npy", allow_pickle=False)
    ends = np.cumsum(lengths)
    if len(lengths) != record["documents"] or (ends[-1] if len(ends) else 0) != tokens.size:
        raise ValueError(f"{shard_dir}: lengths.npy does not add up to tokens.npy")
    start = 0
    for end, code in zip(ends.tolist(), codes.tolist(), strict=True):
        yield tokens[start:end], record["sources"][code]
        start = end
