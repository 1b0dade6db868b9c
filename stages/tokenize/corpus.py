"""The curated data read as streams: rows one at a time, in batches, never the whole file."""

from __future__ import annotations

import itertools
import pathlib
from collections.abc import Iterable, Iterator

from stages.common.jsonl import iter_jsonl

BATCH_DOCS = 1000  # documents encoded and written per batch


def pretrain_texts(data: pathlib.Path) -> Iterator[str]:
    """The curated pretraining documents' texts."""
    return (row["text"] for row in iter_jsonl(data / "pretrain.jsonl", ("id", "text")))


def pretrain_documents(data: pathlib.Path, skip: int = 0) -> Iterator[tuple[str, str]]:
    """(text, source) of each curated pretraining document (``world`` without a source), after
    the first ``skip``."""
    for row in iter_jsonl(data / "pretrain.jsonl", ("id", "text"), skip):
        yield row["text"], row.get("source", "world")


def conversations(data: pathlib.Path, kind: str, skip: int = 0) -> Iterator[list[dict]]:
    """The ``messages`` of ``data/<kind>.jsonl`` (sft, midtrain) after the first ``skip``; none
    if midtrain is absent."""
    path = data / f"{kind}.jsonl"
    if kind == "midtrain" and not path.is_file():
        return iter(())
    return (row["messages"] for row in iter_jsonl(path, ("id", "messages"), skip))


def bpe_texts(data: pathlib.Path) -> Iterator[str]:
    """What the BPE trains on, in this order: pretraining texts, then the message contents of
    the SFT, mid-training and preference data."""
    yield from pretrain_texts(data)
    for messages in itertools.chain(conversations(data, "sft"), conversations(data, "midtrain")):
        yield from (m["content"] for m in messages)
    keys = ("prompt", "chosen", "rejected")
    for row in iter_jsonl(data / "preference.jsonl", ("id", *keys)):
        yield from (m["content"] for k in keys for m in row[k])


def batches(items: Iterable, size: int = BATCH_DOCS) -> Iterator[list]:
    """Consecutive lists of ``size`` items (the last one shorter)."""
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch
