"""Tulu 3 style n-gram decontamination: per-instance token coverage, scanned per shard.

Written by hand rather than with datatrove: datatrove's n-gram decontamination (0.10.1,
``NGramsDecontFilter``) drops a document on *any* n-gram hash match against lighteval tasks,
whereas Tulu 3 scores each eval instance by the share of its tokens covered by n-grams one
training document contains, and flags the instance when that share reaches a threshold. That
score is what we report per eval set and what decides which training documents are removed.

Scale: ``EvalIndex`` (stages/curate/evalindex.py) holds the eval grams; each shard job streams
its documents once through a ``ShardScan``; ``merge_scans`` takes the per-instance maximum over
the shards' JSON. Ties go to the smallest document key, so the result does not depend on how
the documents were split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stages.curate.evalindex import EvalIndex, Gram, instance_grams, words

__all__ = [
    "EvalIndex",
    "Gram",
    "Report",
    "ShardScan",
    "decontaminate",
    "instance_grams",
    "instance_texts",
    "merge_scans",
    "words",
]

SCAN_FORMAT = "reprolm.decontamination_scan/1"
EXAMPLES = 5  # per task in the report: flagged instances with their best document


class _Best:
    """Per instance position: best score and the smallest document key reaching it."""

    def __init__(self, size: int) -> None:
        self.score = np.zeros(size)
        self.key = np.full(size, -1, np.int64)

    def update(self, inst: np.ndarray, scores: np.ndarray, keys: np.ndarray) -> None:
        cur, cur_key = self.score[inst], self.key[inst]
        better = (scores > cur) | ((scores == cur) & (keys < cur_key))
        self.score[inst[better]] = scores[better]
        self.key[inst[better]] = keys[better]


class ShardScan:
    """Accumulates one shard's documents against an index."""

    def __init__(self, index: EvalIndex, threshold: float) -> None:
        self.index, self.threshold = index, threshold
        self.best = _Best(len(index.keys))
        self.hits: list[tuple[int, int, float]] = []  # (doc_key, instance position, score)
        self.documents = 0

    def add(self, doc_key: int, texts: list[str]) -> list[tuple[str, str, float]]:
        """Scan one document (``doc_key``: its global position); its hits >= threshold."""
        return self._record(doc_key, *self.index.score_texts(texts))

    def add_words(self, doc_key: int, word_lists: list[list[str]]) -> list[tuple[str, str, float]]:
        """``add`` for a document given as its texts' words."""
        return self._record(doc_key, *self.index.score_words(word_lists))

    def _record(
        self, doc_key: int, inst: np.ndarray, scores: np.ndarray
    ) -> list[tuple[str, str, float]]:
        self.documents += 1
        if not len(inst):
            return []
        self.best.update(inst, scores, np.full(len(inst), doc_key, np.int64))
        hit = np.flatnonzero(scores >= self.threshold)
        found = [(doc_key, int(inst[i]), float(scores[i])) for i in hit]
        self.hits += found
        return sorted((*self.index.keys[i], score) for _, i, score in found)

    def to_json(self) -> dict:
        """Per instance its best (score, doc_key) where score > 0, and every hit >= threshold."""
        keys = self.index.keys
        best = [
            [int(i), *keys[i], float(self.best.score[i]), int(self.best.key[i])]
            for i in np.flatnonzero(self.best.score > 0)
        ]
        hits = [[key, i, *keys[i], score] for key, i, score in sorted(self.hits)]
        return {
            "format": SCAN_FORMAT,
            "index": self.index.digest,
            "ngram": self.index.n,
            "threshold": self.threshold,
            "documents": self.documents,
            "best": best,  # [instance position, task, id, score, doc_key]
            "hits": hits,  # [doc_key, instance position, task, id, score]
        }


@dataclass
class Report:
    """Per eval task: instances, flagged ids, contamination, best scores, examples; and the
    removed documents (``merge_scans``: doc keys; ``decontaminate``: train set -> rows)."""

    tasks: dict[str, dict]
    removed: set[int] | dict[str, set[int]]


def _check_scan(index: EvalIndex, scan: dict, threshold: float) -> None:
    if scan.get("format") != SCAN_FORMAT or scan.get("index") != index.digest:
        raise ValueError("merge_scans: a scan was not made against this eval index")
    if scan["threshold"] > threshold:
        raise ValueError(
            f"merge_scans: a scan kept hits >= {scan['threshold']}, above threshold {threshold}"
        )


def merge_scans(index: EvalIndex, scans: list[dict], threshold: float) -> Report:
    """Gather: per instance the maximum over the shards' scans (ties: smallest doc key)."""
    best, removed = _Best(len(index.keys)), set()
    for scan in scans:
        _check_scan(index, scan, threshold)
        for pos, task, uid, _, _ in scan["best"]:
            if index.keys[pos] != (task, uid):
                raise ValueError(f"merge_scans: instance {pos} is not {task}/{uid} in the index")
        if scan["best"]:
            pos, _, _, scores, keys = zip(*scan["best"], strict=True)
            best.update(np.array(pos, np.int64), np.array(scores), np.array(keys, np.int64))
        removed |= {hit[0] for hit in scan["hits"] if hit[4] >= threshold}
    tasks = {}
    for task, (first, stop) in index.task_ranges.items():
        flagged = [i for i in range(first, stop) if best.score[i] >= threshold and best.key[i] >= 0]
        size = stop - first
        tasks[task] = {
            "instances": size,
            "flagged": len(flagged),
            "flagged_ids": [index.keys[i][1] for i in flagged],
            "contamination": len(flagged) / size if size else 0.0,
            "best_score": {index.keys[i][1]: float(best.score[i]) for i in flagged},
            "examples": [
                {
                    "instance": index.keys[i][1],
                    "doc_key": int(best.key[i]),
                    "score": float(best.score[i]),
                }
                for i in flagged[:EXAMPLES]
            ],
        }
    return Report(tasks, removed)


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


_OLD_KEYS = ("instances", "flagged", "flagged_ids", "contamination")


def decontaminate(
    docs: dict[str, list[list[str]]],
    instances: dict[str, list[tuple[str, list[str]]]],
    n: int,
    threshold: float,
) -> Report:
    """Flag eval instances whose best training document covers >= ``threshold`` of their
    tokens, and collect every document that reaches the threshold for a flagged instance.

    ``docs``: train set -> per document its texts' words; ``instances``: task -> (id, texts).
    One in-memory shard; ``removed`` per train set as row indices, ``tasks`` without the
    scan-only keys (best_score, examples), as the curate payload has them.
    """
    index = EvalIndex.build(instances, n)
    shard, where = ShardScan(index, threshold), []
    for train_set, rows in docs.items():
        for row_index, texts in enumerate(rows):
            shard.add_words(len(where), texts)
            where.append((train_set, row_index))
    report = merge_scans(index, [shard.to_json()], threshold)
    removed: dict[str, set[int]] = {name: set() for name in docs}
    for key in report.removed:
        train_set, row_index = where[key]
        removed[train_set].add(row_index)
    tasks = {task: {k: stats[k] for k in _OLD_KEYS} for task, stats in report.tasks.items()}
    return Report(tasks, removed)
