"""The mid-training mix: windows of each source of the tokenize artifact, drawn by ratio.

Where each source lies comes from tokenize's ``shards/index.json``: each part file's entry
records the runs of consecutive same-source documents it holds (``files[i].sources``, a list of
``{source, documents, tokens}`` in stream order), so a run is the token range [start, start +
tokens) of its part, with no curate read and no split at eos (a document may hold eos itself).

Fallback, only for tokenize artifacts written before ``files[i].sources`` existed: the runs are
derived from what exists: the document stream is curate's ``data/pretrain.jsonl`` rows in order
(each row's ``source``, ``world`` without one), then the ``midtrain`` conversations
(docs/stages/tokenize.md, "Positions"); a part file holds whole documents
(``files[i].documents``), each ending with eos. A part whose documents all belong to one source
is that source's whole; in a part where the source changes, documents are split at its eos tokens
(their count must equal the part's documents, which fails when a document holds eos).

Each source's *segments* (part, start, stop) are cut into non-overlapping ``seq_len`` windows (a
segment's tail is dropped, as pretrain drops a part's).
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from stages.common.training import TrainingInputError
from stages.tokenize.corpus import pretrain_documents

MIDTRAIN = "midtrain"  # tokenize's source name of the rendered mid-training conversations
Segments = dict[str, list[tuple[int, int, int]]]  # source -> (part, start, stop) in stream order
RERUN = "rerun the tokenize stage to rewrite it"


def recorded_segments(index: Mapping[str, Any]) -> Segments | None:
    """Source -> segments from the parts' recorded runs (``files[i].sources``); None when no
    part records them (an artifact from before the field: the caller derives them instead)."""
    files = index["files"]
    recorded = ["sources" in entry for entry in files]
    if not any(recorded):
        return None
    if not all(recorded):
        raise TrainingInputError(
            f"midtrain: {files[recorded.index(False)]['path']} has no sources in "
            f"shards/index.json while other parts do; {RERUN}"
        )
    segments: Segments = {}
    totals: dict[str, dict[str, int]] = {}
    for part, entry in enumerate(files):
        start = 0
        for run in entry["sources"]:
            name, tokens = run["source"], int(run["tokens"])
            if tokens:
                segments.setdefault(name, []).append((part, start, start + tokens))
            start += tokens
            total = totals.setdefault(name, {"documents": 0, "tokens": 0})
            total["documents"] += int(run["documents"])
            total["tokens"] += tokens
        documents = sum(int(run["documents"]) for run in entry["sources"])
        if (documents, start) != (int(entry["documents"]), int(entry["tokens"])):
            raise TrainingInputError(
                f"midtrain: shards/index.json files entry {entry['path']}: its sources hold "
                f"{documents} documents and {start} tokens, the part {entry['documents']} "
                f"documents and {entry['tokens']} tokens; {RERUN}"
            )
    expected = {
        name: {"documents": int(counts["documents"]), "tokens": int(counts["tokens"])}
        for name, counts in index.get("sources", {}).items()
    }
    if totals != expected:
        raise TrainingInputError(
            f"midtrain: shards/index.json: the parts' sources add up to "
            f"{dict(sorted(totals.items()))}, its sources say {dict(sorted(expected.items()))}; "
            f"{RERUN}"
        )
    return segments


def document_runs(index: Mapping[str, Any], curate_dir: Path) -> list[tuple[str, int]]:
    """Fallback for tokenize artifacts without ``files[i].sources``: (source, documents) of each
    run of consecutive same-source documents, in stream order.

    With one pretraining source its documents are the first ones (no need to read curate);
    otherwise the sources of curate's rows, checked against the index's counts."""
    counts = {name: int(entry["documents"]) for name, entry in index.get("sources", {}).items()}
    pretraining = sorted(name for name in counts if name != MIDTRAIN)
    if len(pretraining) <= 1:
        runs = [(name, counts[name]) for name in pretraining]
    else:
        data = curate_dir / "data"
        grouped = itertools.groupby(source for _, source in pretrain_documents(data))
        runs = [(source, sum(1 for _ in group)) for source, group in grouped]
    if counts.get(MIDTRAIN):
        runs.append((MIDTRAIN, counts[MIDTRAIN]))
    seen: dict[str, int] = {}
    for source, number in runs:
        seen[source] = seen.get(source, 0) + number
    if seen != {name: number for name, number in counts.items() if number}:
        raise TrainingInputError(
            f"midtrain: the curate input's documents per source {dict(sorted(seen.items()))} "
            f"are not the tokenize input's (shards/index.json sources: {counts}); pass the "
            "curate artifact the tokenize job read"
        )
    return runs


def source_segments(
    shards: list[np.ndarray], index: Mapping[str, Any], runs: list[tuple[str, int]]
) -> Segments:
    """Fallback for tokenize artifacts without ``files[i].sources``: source -> its (part,
    start token, stop token) segments, in stream order, split at eos where the source changes."""
    owner = [source for source, number in runs for _ in range(number)]  # document -> source
    files = index["files"]
    if sum(int(f["documents"]) for f in files) != len(owner):
        raise TrainingInputError(
            f"midtrain: shards/index.json files hold {sum(int(f['documents']) for f in files)} "
            f"documents, its sources {len(owner)}; rerun the tokenize stage"
        )
    segments: Segments = {}
    first = 0
    for part, (entry, shard) in enumerate(zip(files, shards, strict=True)):
        count = int(entry["documents"])
        mine = owner[first : first + count]
        if len(set(mine)) == 1:
            segments.setdefault(mine[0], []).append((part, 0, len(shard)))
        elif mine:
            ends = _document_ends(shard, int(index["eos_token_id"]), count, entry["path"])
            start = 0
            for source, group in itertools.groupby(enumerate(mine), key=lambda x: x[1]):
                last = list(group)[-1][0]
                segments.setdefault(source, []).append((part, start, int(ends[last])))
                start = int(ends[last])
        first += count
    return segments


def _document_ends(shard: np.ndarray, eos: int, documents: int, path: str) -> np.ndarray:
    """Token offsets just past each document's eos in a part; their count must be the part's
    documents (a document holding eos itself cannot be told apart)."""
    ends = np.flatnonzero(np.asarray(shard) == eos) + 1
    if len(ends) != documents:
        raise TrainingInputError(
            f"midtrain: {path} holds {len(ends)} eos tokens for {documents} documents (a "
            "document contains the eos token, e.g. a chat template that ends turns with it), "
            "so its sources cannot be told apart; this tokenize artifact predates "
            "shards/index.json files[i].sources: rerun the tokenize stage to record them"
        )
    return ends


@dataclass(frozen=True)
class SourceWindows:
    """The ``seq_len`` windows of one source: (part, offset) of each, in stream order."""

    parts: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.parts)


def windows(segments: list[tuple[int, int, int]], seq_len: int) -> SourceWindows:
    """Non-overlapping windows of each segment (its tail dropped)."""
    parts, offsets = [], []
    for part, start, stop in segments:
        starts = np.arange(start, stop - seq_len + 1, seq_len, dtype=np.int64)
        parts.append(np.full(len(starts), part, dtype=np.int64))
        offsets.append(starts)
    empty = np.zeros(0, dtype=np.int64)
    return SourceWindows(
        np.concatenate(parts) if parts else empty, np.concatenate(offsets) if offsets else empty
    )


def quotas(mix: Mapping[str, float], samples: int) -> dict[str, int]:
    """Windows per source: ``samples`` x ratio / sum of ratios, rounded by largest remainder
    (ties to the source first in name order); they sum to ``samples``."""
    ratios = {name: Fraction(value) for name, value in sorted(mix.items())}
    total = sum(ratios.values())
    exact = {name: samples * ratio / total for name, ratio in ratios.items()}
    counts = {name: int(value) for name, value in exact.items()}
    left = samples - sum(counts.values())
    ranked = sorted(exact, key=lambda name: (-(exact[name] - counts[name]), name))
    for name in ranked[:left]:
        counts[name] += 1
    return counts


def _stream(seed: int, name: str, available: int) -> Iterator[np.ndarray]:
    """Epochs of seeded permutations of a source's window numbers (its own stream per name)."""
    for epoch in itertools.count():
        yield np.random.default_rng([seed, zlib.crc32(name.encode()), epoch]).permutation(available)


def draw(
    by_source: Mapping[str, SourceWindows], counts: Mapping[str, int], seed: int
) -> np.ndarray:
    """The run's samples: rows ``(source number, part, offset)`` (sources numbered in name
    order), ``counts[s]`` windows of each source (epochs of seeded permutations when it has
    fewer), then shuffled together by a seeded permutation."""
    rows = []
    for number, name in enumerate(sorted(counts)):
        want, source = counts[name], by_source[name]
        if not want:
            continue
        epochs = -(-want // len(source))
        picked = np.concatenate(list(itertools.islice(_stream(seed, name, len(source)), epochs)))
        picked = picked[:want]
        rows.append(
            np.stack(
                [
                    np.full(want, number, dtype=np.int64),
                    source.parts[picked],
                    source.offsets[picked],
                ],
                axis=1,
            )
        )
    samples = np.concatenate(rows)
    return samples[np.random.default_rng([seed]).permutation(len(samples))]


def select(
    shards: list[np.ndarray],
    index: Mapping[str, Any],
    curate_dir: Path,
    mix: Mapping[str, float],
    seq_len: int,
    samples: int,
    seed: int,
) -> tuple[np.ndarray, dict[str, Any]]:
    """(samples array, the mix record for ``mix/mix.json``) of a run of ``samples`` windows;
    ``curate_dir`` is read only for a tokenize artifact without ``files[i].sources``."""
    available = sorted(index.get("sources", {}))
    unknown = sorted(set(mix) - set(available))
    if unknown:
        raise TrainingInputError(
            f"midtrain.mix.{unknown[0]}: no such source in the tokenize artifact; its sources "
            f"are {', '.join(available) or 'none'} (shards/index.json sources)"
        )
    segments = recorded_segments(index)
    if segments is None:  # a tokenize artifact from before files[i].sources: derive them
        segments = source_segments(shards, index, document_runs(index, curate_dir))
    by_source = {name: windows(segments.get(name, []), seq_len) for name in sorted(mix)}
    counts = quotas(mix, samples)
    for name, want in counts.items():
        if want and not len(by_source[name]):
            raise TrainingInputError(
                f"midtrain.mix.{name}: the source holds no window of seq_len={seq_len} tokens "
                f"({index['sources'][name]['tokens']} tokens); give it ratio 0 or more data"
            )
    record = {
        "seq_len": seq_len,
        "samples": samples,
        "sources": {
            name: {
                "ratio": mix[name],
                "windows_available": len(by_source[name]),
                "windows": counts[name],
                "epochs": counts[name] / len(by_source[name]) if len(by_source[name]) else 0.0,
            }
            for name in sorted(mix)
        },
    }
    return draw(by_source, counts, seed), record
