"""Our curation code in ``benchmarks/curation.py``, on the same files as the datatrove baseline,
read by one plain JSONL reader (``curation_data.read_texts``: ``json.loads`` per line).

* ``filters``: ``stages.curate.filters.apply_filters`` with Gopher quality, Gopher repetition,
  C4 and FineWeb (``build_filters``, default settings) on every document.
* ``minhash``: ``stages.curate.minhash.band_keys`` per document, then ``clusters`` over all.
* ``decont``: ``EvalIndex.build`` over the eval set, one ``ShardScan`` per corpus file (= a
  shard) fed every document, ``to_json`` per shard, ``merge_scans`` over all shards.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
from curation_data import Stopwatch, read_texts

THRESHOLD = 0.5  # the recipes' curate.threshold
NGRAM = 8  # the recipes' curate.ngram (Tulu 3)


def _paths(corpus: Path) -> list[str]:
    return [str(p) for p in sorted(corpus.glob("*.jsonl"))]


def read(corpus: Path, **_) -> dict:
    docs, watch = 0, Stopwatch()
    with watch("read"):
        for _index, _text in read_texts(_paths(corpus)):
            docs += 1
    return {"docs_out": docs, **watch.record()}


def filters(corpus: Path, **_) -> dict:
    from stages.curate.filters import apply_filters, build_filters

    reasons: Counter = Counter()
    watch = Stopwatch()
    with watch("read+filters"):
        chain = build_filters(
            {"gopher_quality": {}, "gopher_repetition": {}, "c4": {}, "fineweb": {}}
        )
        for _index, text in read_texts(_paths(corpus)):
            _text, reason = apply_filters(chain, text)
            reasons[reason or "kept"] += 1
    return {"docs_out": reasons["kept"], "reasons": dict(sorted(reasons.items())), **watch.record()}


def minhash(corpus: Path, **_) -> dict:
    from stages.curate.minhash import MinHashConfig, band_keys, clusters

    config, watch = MinHashConfig(), Stopwatch()
    with watch("read+band_keys"):
        rows = [band_keys(text, config) for _index, text in read_texts(_paths(corpus))]
        keys = np.stack(rows) if rows else np.zeros((0, 1), dtype=np.uint64)
    with watch("clusters"):
        labels = clusters(keys, np.arange(len(rows), dtype=np.int64))
    duplicates = int((np.asarray(labels) != np.arange(len(rows))).sum())
    return {"docs_out": len(rows) - duplicates, "config": repr(config), **watch.record()}


def decont(corpus: Path, instances: list, **_) -> dict:
    from stages.curate.decontaminate import EvalIndex, ShardScan, merge_scans

    watch, payloads, doc_key = Stopwatch(), [], 0
    with watch("index"):
        index = EvalIndex.build({"gsm_synth": instances}, NGRAM)
    with watch("read+scan"):
        for path in _paths(corpus):
            scan = ShardScan(index, THRESHOLD)
            for _index, text in read_texts([path]):
                scan.add(doc_key, [text])
                doc_key += 1
            payloads.append(scan.to_json())
    with watch("merge"):
        report = merge_scans(index, payloads, THRESHOLD)
    return {"docs_out": doc_key - _removed(report), "flagged": _flagged(report), **watch.record()}


def _removed(report) -> int:
    removed = getattr(report, "removed", None)
    if isinstance(removed, dict):
        return sum(len(v) for v in removed.values())
    return len(removed or ())


def _flagged(report) -> list[str]:
    tasks = getattr(report, "tasks", {}) or {}
    return sorted(uid for task in tasks.values() for uid in task.get("flagged_ids", []))
