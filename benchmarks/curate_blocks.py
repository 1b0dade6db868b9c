"""Throughput of curate's document blocks, per core: each quality filter alone and chained,
PII masking, MinHash band keys (against datatrove's own signature step on the same text) and
``clusters`` on many documents. CPU seconds of this process (``time.process_time``), so the
figures are per core even on a busy machine. Writes JSON to benchmarks/results/.

    python benchmarks/curate_blocks.py --mb 20 [--cluster-docs 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import time
from pathlib import Path

import numpy as np

from stages.curate.filters import FILTERS, apply_filters, build_filters
from stages.curate.minhash import MinHashConfig, band_keys, clusters
from stages.curate.pii import mask_pii

_VOCABULARY = {
    "det": "the a this that every each some another our their",
    "adj": "small large old new quiet busy early late bright dark warm cold green local public "
    "private ancient modern simple careful famous narrow open strong gentle rural",
    "noun": "river valley town market school church bridge road field farmer merchant teacher "
    "village winter summer harbour garden library museum council railway factory forest "
    "mountain family student doctor engineer century region city",
    "verb": "built crossed visited opened closed followed described changed joined reached "
    "supported protected studied painted repaired replaced admired remembered",
    "prep": "near behind beside across through under over along around beyond with",
}
_WORDS = {kind: words.split() for kind, words in _VOCABULARY.items()}


def sentence(rng: np.random.Generator) -> str:
    def pick(kind: str) -> str:
        return _WORDS[kind][rng.integers(len(_WORDS[kind]))]

    parts = [pick("det"), pick("adj"), pick("noun"), pick("verb"), pick("det"), pick("noun")]
    for _ in range(rng.integers(0, 3)):
        parts += [pick("prep"), pick("det"), pick("adj"), pick("noun")]
    if rng.random() < 0.3:
        parts += ["and", "it", "was", pick("adj"), "in", str(1800 + rng.integers(220))]
    text = " ".join(parts)
    return (
        text[0].upper()
        + text[1:]
        + (", which was " + pick("adj") if rng.random() < 0.2 else "")
        + "."
    )


def corpus(mb: float, seed: int = 0) -> list[str]:
    """English-like documents: 5-30 lines of 1-3 sentences; 10% boilerplate menus."""
    rng = np.random.default_rng(seed)
    docs, size = [], 0
    while size < mb * 1e6:
        if rng.random() < 0.1:
            text = "\n".join(
                " ".join(_WORDS["noun"][i] for i in rng.integers(0, 30, 2)) for _ in range(12)
            )
        else:
            lines = [
                " ".join(sentence(rng) for _ in range(rng.integers(1, 4)))
                for _ in range(rng.integers(5, 31))
            ]
            text = "\n".join(lines)
        docs.append(text)
        size += len(text.encode())
    return docs


def machine() -> dict:
    from importlib.metadata import version

    cpuinfo = Path("/proc/cpuinfo")
    models = re.findall(r"model name\s*: (.*)", cpuinfo.read_text()) if cpuinfo.exists() else []
    return {
        "cpu": models[0] if models else platform.processor(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "datatrove": version("datatrove"),
        "nltk": version("nltk"),
    }


def timed(fn, docs: list[str]) -> float:
    start = time.process_time()
    for text in docs:
        fn(text)
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=float, default=2.0)
    parser.add_argument("--cluster-docs", type=int, default=100_000)
    parser.add_argument("--out", default="benchmarks/results/curate_blocks.json")
    args = parser.parse_args()
    docs = corpus(args.mb)
    mb = sum(len(d.encode()) for d in docs) / 1e6
    result = {"machine": machine(), "docs": len(docs), "mb": mb}
    rates = {}
    for name in FILTERS:
        filters = build_filters({name: True})
        kept = sum(apply_filters(filters, d)[1] is None for d in docs)
        seconds = timed(lambda t, f=filters: apply_filters(f, t), docs)
        rates[name] = {"mb_per_cpu_s": mb / seconds, "kept": kept}
    chain = build_filters({name: True for name in FILTERS})
    rates["all_four_chained"] = {
        "mb_per_cpu_s": mb / timed(lambda t: apply_filters(chain, t), docs)
    }
    rates["pii"] = {"mb_per_cpu_s": mb / timed(mask_pii, docs)}
    config = MinHashConfig()
    rates["minhash_band_keys"] = {"mb_per_cpu_s": mb / timed(lambda t: band_keys(t, config), docs)}
    rates["datatrove_minhash_signature"] = {"mb_per_cpu_s": mb / datatrove_signature_seconds(docs)}
    result["blocks"] = rates
    result["clusters"] = cluster_timing(args.cluster_docs)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def datatrove_signature_seconds(docs: list[str]) -> float:
    """datatrove's MinhashDedupSignature shingles + signature (its stage 1 without file I/O)."""
    import tempfile

    from datatrove.pipeline.dedup.minhash import MinhashDedupSignature

    from stages.curate.wordtok import english

    step = MinhashDedupSignature(tempfile.mkdtemp(), language=english())
    return timed(lambda t: step.get_signature(step.get_shingles(t)), docs)


def cluster_timing(n: int) -> dict:
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 2**63, (n, 14), dtype=np.uint64)
    dup = rng.integers(0, n, (n // 10, 2))  # 10% of documents share a band with another
    band = rng.integers(0, 14, len(dup))
    keys[dup[:, 1], band] = keys[dup[:, 0], band]
    start = time.process_time()
    out = clusters(keys, rng.permutation(n).astype(np.int64))
    seconds = time.process_time() - start
    return {
        "docs": n,
        "cpu_s": seconds,
        "docs_per_cpu_s": n / seconds,
        "clusters": len(np.unique(out)),
    }


if __name__ == "__main__":
    main()
