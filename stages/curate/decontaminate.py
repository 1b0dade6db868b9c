"""Tulu 3 style n-gram decontamination: per-instance token coverage.

Written by hand rather than with datatrove: datatrove's n-gram decontamination flags a
document on *any* n-gram match against lighteval tasks, whereas Tulu 3 scores each eval
instance by the share of its tokens covered by n-grams one training document contains, and
flags the instance when that share reaches a threshold. That score is what we report per eval
set and what decides which training documents are removed.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

_WORD = re.compile(r"[^\W_]+")  # runs of Unicode letters/digits

DocId = tuple[str, int]  # (train set, row index)


def words(text: str) -> list[str]:
    """Lowercased words: the text split on non-alphanumerics."""
    return _WORD.findall(text.lower())


@dataclass(frozen=True)
class Gram:
    """An n-gram of an eval instance and the token positions it covers."""

    words: tuple[str, ...]
    start: int


def instance_grams(texts: list[str], n: int) -> tuple[int, list[Gram]]:
    """(token count, grams) of one instance. Each text contributes its word n-grams, or, when
    shorter than n words, the whole text as one gram."""
    grams, offset = [], 0
    for text in texts:
        toks = words(text)
        if len(toks) >= n:
            grams += [Gram(tuple(toks[i : i + n]), offset + i) for i in range(len(toks) - n + 1)]
        elif toks:
            grams.append(Gram(tuple(toks), offset))
        offset += len(toks)
    return offset, grams


def build_index(
    docs: dict[str, list[list[str]]], wanted: set[tuple[str, ...]]
) -> dict[tuple[str, ...], list[DocId]]:
    """One pass over the training texts: gram -> ids of the documents containing it.

    Only grams that occur in some eval instance are kept (``wanted``), so the index stays
    small; lookups are then one dict access per instance gram instead of a scan of all
    documents per instance. ``docs`` maps train set -> per document its texts' words.
    """
    lengths = sorted({len(g) for g in wanted})
    index: dict[tuple[str, ...], list[DocId]] = defaultdict(list)
    for train_set, rows in docs.items():
        for row_index, texts in enumerate(rows):
            found: dict[tuple[str, ...], None] = {}  # ordered set
            for toks in texts:
                for size in lengths:
                    for i in range(len(toks) - size + 1):
                        gram = tuple(toks[i : i + size])
                        if gram in wanted:
                            found[gram] = None
            for gram in found:
                index[gram].append((train_set, row_index))
    return index


def score_instance(
    total: int, grams: list[Gram], index: dict[tuple[str, ...], list[DocId]]
) -> dict[DocId, float]:
    """Per training document: share of the instance's tokens covered by grams it contains."""
    covered: dict[DocId, set[int]] = defaultdict(set)
    for gram in grams:
        for doc in index.get(gram.words, ()):
            covered[doc].update(range(gram.start, gram.start + len(gram.words)))
    return {doc: len(pos) / total for doc, pos in covered.items()}


@dataclass
class Report:
    """Per eval task: instance ids, flagged ids and best score; per train set: removed rows."""

    tasks: dict[str, dict]
    removed: dict[str, set[int]]


def instance_texts(instance: dict, fields: list[str], where: str) -> list[str]:
    """The texts of an instance's ``fields`` (a field may hold a string or a list of them)."""
    texts = []
    for field in fields:
        value = instance.get(field)
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(v, str) for v in values):
            raise ValueError(f"{where}: text field {field!r} must be a string or list of strings")
        texts += values
    return texts


def decontaminate(
    docs: dict[str, list[list[str]]],
    instances: dict[str, list[tuple[str, list[str]]]],
    n: int,
    threshold: float,
) -> Report:
    """Flag eval instances whose best training document covers >= ``threshold`` of their
    tokens, and collect every document that reaches the threshold for a flagged instance.

    ``docs``: train set -> per document its texts' words; ``instances``: task -> (id, texts).
    """
    grams = {
        task: [(uid, *instance_grams(texts, n)) for uid, texts in rows]
        for task, rows in instances.items()
    }
    wanted = {g.words for rows in grams.values() for _, _, gs in rows for g in gs}
    index = build_index(docs, wanted)
    removed: dict[str, set[int]] = {name: set() for name in docs}
    tasks = {}
    for task, rows in grams.items():
        flagged = []
        for uid, total, gs in rows:
            scores = score_instance(total, gs, index) if total else {}
            hits = [doc for doc, score in scores.items() if score >= threshold]
            if hits:
                flagged.append(uid)
                for train_set, row_index in hits:
                    removed[train_set].add(row_index)
        tasks[task] = {
            "instances": len(rows),
            "flagged": len(flagged),
            "flagged_ids": flagged,
            "contamination": len(flagged) / len(rows) if rows else 0.0,
        }
    return Report(tasks, removed)
