"""The documents tokenize shards, as one stream in position order: the curated pretraining
texts, then (``tokenize.midtrain``) the mid-training conversations rendered with the chat
template as source ``midtrain``. A range of positions can be taken without rendering the
conversations before it (tokenize_shard jobs take their shards' ranges)."""

from __future__ import annotations

import itertools
import pathlib
from collections.abc import Iterable, Iterator
from typing import Any

from stages.tokenize.corpus import batches, conversations, pretrain_documents
from stages.tokenize.given import TokenizerError


def _lines(path: pathlib.Path) -> int:
    if not path.is_file():
        return 0
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def count_documents(config: dict, data: pathlib.Path) -> int:
    """How many documents the stream holds: the lines of data/pretrain.jsonl (+ midtrain.jsonl)."""
    total = _lines(data / "pretrain.jsonl")
    return total + (_lines(data / "midtrain.jsonl") if config["midtrain"] else 0)


def shard_range(shard: int, shards: int, total: int) -> tuple[int, int]:
    """Positions [start, stop) of shard ``shard`` of ``shards`` over ``total`` documents (the
    split curate uses)."""
    return shard * total // shards, (shard + 1) * total // shards


def documents(
    config: dict, data: pathlib.Path, tokenizer: Any, start: int = 0, stop: int | None = None
) -> Iterator[tuple[str, str]]:
    """(text, source) of the documents at positions [start, stop) (stop None: to the end); the
    lines before ``start`` are skipped unparsed, the conversations before it unrendered."""
    pretrain = _lines(data / "pretrain.jsonl") if start else 0
    stream = itertools.chain(
        pretrain_documents(data, min(start, pretrain)),
        _rendered(config, data, tokenizer, max(start - pretrain, 0)),
    )
    return itertools.islice(stream, None if stop is None else max(stop - start, 0))


def _rendered(
    config: dict, data: pathlib.Path, tokenizer: Any, skip: int
) -> Iterator[tuple[str, str]]:
    """The mid-training conversations after the first ``skip``, rendered (none without
    ``midtrain``)."""
    if not config["midtrain"]:
        return
    for messages in conversations(data, "midtrain", skip):
        if tokenizer.chat_template is None:
            raise TokenizerError(
                "tokenize.midtrain: the tokenizer has no chat template to render the "
                "mid-training conversations with; set tokenize.midtrain: false or give a "
                "tokenizer with one"
            )
        yield tokenizer.apply_chat_template(messages, tokenize=False), "midtrain"


def encode_batches(
    tokenizer: Any, stream: Iterable[tuple[str, str]]
) -> Iterator[tuple[list[tuple[str, str]], list[list[int]]]]:
    """(batch of (text, source), their token ids without special tokens) per batch."""
    backend = tokenizer.backend_tokenizer
    backend.no_truncation()  # a saved tokenizer.json may carry truncation or padding settings
    backend.no_padding()
    for batch in batches(stream):
        texts = [text for text, _ in batch]
        yield batch, [e.ids for e in backend.encode_batch(texts, add_special_tokens=False)]


def count_document(per_source: dict[str, dict[str, int]], source: str, tokens: int) -> None:
    """Count one document of ``tokens`` tokens (eos included) for its source."""
    counts = per_source.setdefault(source, {"documents": 0, "tokens": 0})
    counts["documents"] += 1
    counts["tokens"] += tokens
