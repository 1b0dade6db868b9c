"""The datatrove baseline of ``benchmarks/curation.py``: datatrove's own pipelines on the same
files (``LocalPipelineExecutor(tasks=..., workers=1)``: every rank runs in this process, one
after the other, so the figures are one core's).

* ``filters``: ``JsonlReader`` + its Gopher quality, Gopher repetition, C4 and FineWeb filter
  blocks (the classes ``stages/curate/filters.py`` wraps), default settings.
* ``minhash``: ``MinhashDedupSignature`` (tasks=1) -> ``MinhashDedupBuckets`` (tasks = its
  ``num_buckets``, as it requires) -> ``MinhashDedupCluster`` -> ``MinhashDedupFilter``
  (+ ``JsonlReader``), default ``MinhashConfig`` (5-grams, 14 buckets x 8 hashes, 64-bit
  xxhash); each stage timed.
* ``decont``: ``NGramsDecontIndexer`` cannot run here: its ``run()`` imports lighteval (not
  installed, and its class declares the dependency) after reading the input documents. We
  call the indexer's own ``compute_hashes(label=answer, query=question)`` on an instance
  made without that dependency check and write ``<task>.index.hashes`` exactly as its
  ``run()`` does; then ``JsonlReader`` + ``NGramsDecontFilter`` read that index through
  their own code. Config: 8-grams (Tulu 3's n), query and overlap n-grams included.

Word tokenization: datatrove's English tokenizer needs an nltk/spaCy model download that
cannot happen here, so every block that takes a ``language`` gets the offline
``WordTokenizer`` passed in instead (the one ``stages/curate/filters.py`` uses).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from curation_data import Stopwatch


def offline_tokenizer():
    """The offline English ``WordTokenizer`` of stages/curate/filters.py (shared instance)."""
    from stages.curate.wordtok import english

    return english()


def split_tokenizer():
    """A ``WordTokenizer`` that splits on whitespace: on the ``simplify_text`` output that the
    MinHash and n-gram blocks tokenize (lowercase, no punctuation, single spaces) it gives
    nltk's words, at a fraction of the cost: datatrove's fastest possible word step there."""
    from datatrove.utils.word_tokenizers import WordTokenizer

    class SplitTokenizer(WordTokenizer):
        def word_tokenize(self, text: str) -> list[str]:
            return text.split()

        def sent_tokenize(self, text: str) -> list[str]:
            raise NotImplementedError("only for the MinHash and n-gram blocks")

        def span_tokenize(self, text: str) -> list[tuple[int, int]]:
            raise NotImplementedError("only for the MinHash and n-gram blocks")

    return SplitTokenizer("en")


def _counter(box: list[int]):
    """A pipeline step counting the documents that reach it."""

    def count(data, rank: int = 0, world_size: int = 1):
        for doc in data:
            box[0] += 1
            yield doc

    return count


def _execute(steps: list, logs: Path, tasks: int = 1) -> None:
    from datatrove.executor import LocalPipelineExecutor

    LocalPipelineExecutor(steps, tasks=tasks, workers=1, logging_dir=str(logs)).run()


def _reader(corpus: Path):
    from datatrove.pipeline.readers import JsonlReader

    return JsonlReader(str(corpus), glob_pattern="*.jsonl")


def read(corpus: Path, work: Path, tokenizer, **_) -> dict:
    """JsonlReader alone: the reader's and executor's share of every figure."""
    box, watch = [0], Stopwatch()
    with watch("read"):
        _execute([_reader(corpus), _counter(box)], work / "logs-read")
    return {"docs_out": box[0], **watch.record()}


def filters(corpus: Path, work: Path, tokenizer, **_) -> dict:
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )

    box, watch = [0], Stopwatch()
    steps = [
        _reader(corpus),
        GopherQualityFilter(language=tokenizer),
        GopherRepetitionFilter(language=tokenizer),
        C4QualityFilter(language=tokenizer),
        FineWebQualityFilter(language=tokenizer),
        _counter(box),
    ]
    with watch("read+filters"):
        _execute(steps, work / "logs-filters")
    return {"docs_out": box[0], **watch.record()}


def minhash(corpus: Path, work: Path, tokenizer, **_) -> dict:
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )

    config = MinhashConfig()
    sigs, buckets, ids = str(work / "sigs"), str(work / "buckets"), str(work / "remove_ids")
    box, watch = [0], Stopwatch()
    with watch("read+signature"):
        signature = MinhashDedupSignature(sigs, config=config, language=tokenizer)
        _execute([_reader(corpus), signature], work / "logs-sig")
    with watch("buckets"):
        steps = [MinhashDedupBuckets(sigs, buckets, config=config)]
        _execute(steps, work / "logs-buckets", tasks=config.num_buckets)
    with watch("cluster"):
        _execute([MinhashDedupCluster(buckets, ids, config=config)], work / "logs-cluster")
    with watch("read+filter"):
        steps = [_reader(corpus), MinhashDedupFilter(ids), _counter(box)]
        _execute(steps, work / "logs-filter")
    decision = ("read+signature", "buckets", "cluster")
    return {"docs_out": box[0], "config": str(config), **watch.record(decision)}


def decont(corpus: Path, work: Path, tokenizer, instances: list, **_) -> dict:
    from datatrove.pipeline.decont import NGramsDecontFilter, NGramsDecontIndexer
    from datatrove.pipeline.decont.n_grams import NGramsDecontConfig

    config = NGramsDecontConfig(n_grams=8, find_query_ngrams=True, find_overlap_ngrams=True)
    index_dir = work / "decont-index"
    index_dir.mkdir(parents=True, exist_ok=True)
    box, watch = [0], Stopwatch()
    with watch("index"):
        # object.__new__ skips PipelineStep.__new__'s check for lighteval, which only run() needs
        indexer = object.__new__(NGramsDecontIndexer)
        indexer.__init__(str(index_dir), lighteval_tasks=[], config=config, language=tokenizer)
        hashes: set[int] = set()
        for _uid, (question, answer) in instances:
            hashes.update(indexer.compute_hashes(answer, question))
        array = np.array(list(hashes), dtype=config.hash_config.np_descr)
        with open(index_dir / "gsm_synth.index.hashes", "wb") as handle:
            array.tofile(handle)
    with watch("read+scan"):
        step = NGramsDecontFilter(str(index_dir), config=config, language=tokenizer)
        _execute([_reader(corpus), step, _counter(box)], work / "logs-decont")
    return {
        "docs_out": box[0],
        "index_hashes": len(hashes),
        "config": "8-grams, query + label + overlap n-grams, 64-bit xxhash, any hit removes",
        **watch.record(),
    }
