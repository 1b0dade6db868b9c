"""The curated data read as streams: rows one at a time, in batches, never the whole file."""

from __future__ import annotations

import itertools
import json
import pathlib
from collections.abc import Iterable, Iterator

BATCH_DOCS = 1000  # documents encoded and written per batch


def iter_rows(path: pathlib.Path, required: tuple[str, ...]) -> Iterator[dict]:
    """Rows of a JSONL file, one at a time; errors name ``file:line``."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; is the input artifact complete?")
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({err.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{lineno}: expected a JSON object per line")
            missing = [key for key in required if key not in row]
            if missing:
                raise ValueError(f"{path}:{lineno}: missing key(s) {missing}")
            yield row


def pretrain_texts(data: pathlib.Path) -> Iterator[str]:
    """The curated pretraining documents' texts."""
    return (row["text"] for row in iter_rows(data / "pretrain.jsonl", ("id", "text")))


def pretrain_documents(data: pathlib.Path) -> Iterator[tuple[str, str]]:
    """(text, source) of each curated pretraining document (``world`` without a source)."""
    for row in iter_rows(data / "pretrain.jsonl", ("id", "text")):
        yield row["text"], row.get("source", "world")


def conversations(data: pathlib.Path, kind: str) -> Iterator[list[dict]]:
    """The ``messages`` of ``data/<kind>.jsonl`` (sft, midtrain); none if midtrain is absent."""
    path = data / f"{kind}.jsonl"
    if kind == "midtrain" and not path.is_file():
        return iter(())
    return (row["messages"] for row in iter_rows(path, ("id", "messages")))


def bpe_texts(data: pathlib.Path) -> Iterator[str]:
    """What the BPE trains on, in this order: pretraining texts, then the message contents of
    the SFT, mid-training and preference data."""
    yield from pretrain_texts(data)
    for messages in itertools.chain(conversations(data, "sft"), conversations(data, "midtrain")):
        yield from (m["content"] for m in messages)
    keys = ("prompt", "chosen", "rejected")
    for row in iter_rows(data / "preference.jsonl", ("id", *keys)):
        yield from (m["content"] for k in keys for m in row[k])


def batches(items: Iterable, size: int = BATCH_DOCS) -> Iterator[list]:
    """Consecutive lists of ``size`` items (the last one shorter)."""
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch
