"""Gather curated shards: the decisions that need every shard, then the curated data.

Pass 1 reads every shard line of a kind (in shard order = position order) and decides, per
position: rejected / empty / filtered (from the shard), exact duplicate (content hash seen at an
earlier position), fuzzy duplicate (MinHash-LSH cluster whose first position is another),
decontaminated (covers a flagged eval instance, Tulu 3 definition, maxima gathered across
shards), mixed out (seeded sampling to the sources' weights, or each source's ratio). Pass 2
streams the lines again and writes ``data/<kind>.jsonl`` (kept rows) and
``decisions/<kind>.jsonl`` (one record per position). Nothing here depends on how many shards
there were, so neither does the payload.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stages.curate.decontaminate import EvalIndex, Report, merge_scans
from stages.curate.shard import split_key

DECISIONS = (
    "kept",
    "rejected",
    "empty",
    "filtered",
    "exact_duplicate",
    "fuzzy_duplicate",
    "decontaminated",
    "mixed_out",
)


class CurateError(ValueError):
    """Curated data cannot be gathered as the recipe asks (the message says why)."""


@dataclass
class KindState:
    """Pass-1 knowledge of one kind: the decisions that are not `kept`, and what mixing needs."""

    decided: dict[int, dict[str, Any]] = field(default_factory=dict)
    ids: dict[int, str] = field(default_factory=dict)  # position -> row id (ok rows)
    sizes: dict[int, tuple[str, int, int]] = field(
        default_factory=dict
    )  # pos -> (source, local, bytes)
    hits: dict[int, list] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # source -> counters
    rejects: list[dict[str, Any]] = field(default_factory=list)  # first examples per source
    filters: dict[str, int] = field(default_factory=dict)  # filtered documents per reason
    decontaminated: list[str] = field(default_factory=list)  # ids removed, in position order


def shard_lines(shard_dirs: list[Path], kind: str) -> Iterator[dict[str, Any]]:
    """Every shard line of ``kind``, in position order."""
    for directory in shard_dirs:
        path = directory / f"{kind}.jsonl"
        if path.is_file():
            with path.open(encoding="utf-8") as handle:
                for text in handle:
                    yield json.loads(text)


def _count(state: KindState, source: str, key: str, amount: int = 1) -> None:
    counters = state.counts.setdefault(source, {})
    counters[key] = counters.get(key, 0) + amount


def first_pass(shard_dirs: list[Path], kind: str) -> KindState:
    """Shard decisions, exact duplicates and what later decisions need."""
    state = KindState()
    first_of: dict[str, int] = {}
    expected = 0
    for line in shard_lines(shard_dirs, kind):
        position, source = line["pos"], line["source"]
        if position != expected:
            raise CurateError(f"{kind}: shard lines jump from position {expected} to {position}")
        expected += 1
        _count(state, source, "documents_in")
        status = line["status"]
        if status != "ok":
            state.decided[position] = {"decision": status, "reason": line["reason"]}
            _count(state, source, status)
            if status == "filtered":
                state.filters[line["reason"]] = state.filters.get(line["reason"], 0) + 1
            if status == "rejected" and sum(r["source"] == source for r in state.rejects) < 5:
                state.rejects.append({k: line[k] for k in ("source", "file", "line", "reason")})
            continue
        _count(state, source, "bytes_in", line["bytes"])
        state.ids[position] = line["id"]
        state.sizes[position] = (source, line["local"], line["bytes"])
        if line["hits"]:
            state.hits[position] = line["hits"]
        if line["hash"] in first_of:
            first = first_of[line["hash"]]
            state.decided[position] = {"decision": "exact_duplicate", "of": state.ids[first]}
        else:
            first_of[line["hash"]] = position
    return state


def check_reject_rates(kind: str, state: KindState, rate_max: float) -> None:
    """Fail when a source's rejected share is above curate.reject_rate_max."""
    for source, counters in sorted(state.counts.items()):
        rejected, total = counters.get("rejected", 0), counters["documents_in"]
        if total and rejected / total > rate_max:
            examples = "\n".join(
                f"  {r['file']}:{r['line']}: {r['reason']}"
                for r in state.rejects
                if r["source"] == source
            )
            raise CurateError(
                f"{kind} source {source!r}: {rejected} of {total} records rejected "
                f"({rejected / total:.2%}), above curate.reject_rate_max={rate_max}; first ones:\n"
                f"{examples}\nfix the files, or raise curate.reject_rate_max to accept the loss"
            )


def fuzzy_pass(shard_dirs: list[Path], state: KindState, remove: bool) -> int:
    """MinHash-LSH clusters over the documents still kept; returns the cluster count (size > 1)."""
    from stages.curate.minhash import clusters

    keys, positions = [], []
    for directory in shard_dirs:
        if (directory / "pretrain.bands.npy").is_file():
            keys.append(np.load(directory / "pretrain.bands.npy"))
            positions.append(np.load(directory / "pretrain.bandpos.npy"))
    if not keys:
        return 0
    all_keys, all_positions = np.concatenate(keys), np.concatenate(positions)
    live = np.array([p not in state.decided for p in all_positions.tolist()], dtype=bool)
    if not live.any():
        return 0
    reps = clusters(all_keys[live], all_positions[live])
    found: set[int] = set()
    for position, rep in zip(all_positions[live].tolist(), reps.tolist(), strict=True):
        if position != rep:
            found.add(rep)
            if remove:
                state.decided[position] = {
                    "decision": "fuzzy_duplicate",
                    "of": state.ids[rep],
                    "cluster": rep,
                }
    return len(found)


def decontamination_pass(
    states: Mapping[str, KindState], report: Report, remove: bool
) -> dict[str, dict[str, int]]:
    """Mark the documents covering a flagged instance; per task the documents removed."""
    removed_per_task: dict[str, dict[str, int]] = {}
    for key in sorted(report.removed):
        kind, position = split_key(key)
        state = states[kind]
        hits = state.hits.get(position, [])
        if position in state.decided:
            continue
        tasks = sorted({task for task, _, _ in hits})
        for task in tasks:
            per_kind = removed_per_task.setdefault(task, {})
            per_kind[kind] = per_kind.get(kind, 0) + 1
        if remove:
            state.decided[position] = {
                "decision": "decontaminated",
                "instances": [f"{task}/{uid}" for task, uid, _ in hits],
            }
    return removed_per_task


def _uniform(seed: int, source: str, local: int) -> float:
    """A uniform [0, 1) draw per document, independent of shards and of other documents."""
    digest = hashlib.blake2b(f"{seed}/{source}/{local}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64


def mix_pass(state: KindState, weights: Mapping[str, float], seed: int) -> dict[str, dict]:
    """Sample each source so the kept bytes follow ``weights`` (the scarcest source, relative
    to its weight, is kept whole); records ``mixed_out`` decisions; returns the mix report."""
    available: dict[str, int] = dict.fromkeys(weights, 0)
    for position, (source, _, size) in state.sizes.items():
        if position not in state.decided and source in available:
            available[source] += size
    total_weight = sum(weights.values())
    shares = {s: w / total_weight for s, w in weights.items()}
    # The largest total whose shares every source can fill without repeating a document; a
    # source left with nothing (all filtered) cannot fill its share and is reported at rate 0.
    scale = min((available[s] / shares[s] for s in weights if available[s]), default=0.0)
    rates = {
        s: min(1.0, shares[s] * scale / available[s]) if available[s] else 0.0 for s in weights
    }
    for position, (source, local, _) in sorted(state.sizes.items()):
        if source not in rates or position in state.decided:
            continue
        if _uniform(seed, source, local) >= rates[source]:
            state.decided[position] = {"decision": "mixed_out", "rate": rates[source]}
    return {
        s: {"weight": weights[s], "rate": rates[s], "bytes_available": available[s]}
        for s in weights
    }


def ratio_pass(state: KindState, ratios: Mapping[str, float], seed: int) -> dict[str, dict]:
    """Keep ``int(ratio * available)`` documents of each source (open-instruct's dataset_mixer
    fraction), those with the smallest seeded draws; records ``mixed_out`` decisions for the
    others; returns the mix report. Counts and choice are independent of shards."""
    draws: dict[str, list[tuple[float, int, int]]] = {source: [] for source in ratios}
    for position, (source, local, _) in state.sizes.items():
        if source in draws and position not in state.decided:
            draws[source].append((_uniform(seed, source, local), local, position))
    report = {}
    for source, ratio in ratios.items():
        ranked = sorted(draws[source])
        keep = int(ratio * len(ranked))
        for _, _, position in ranked[keep:]:
            state.decided[position] = {"decision": "mixed_out", "ratio": ratio}
        report[source] = {"ratio": ratio, "available": len(ranked), "kept": keep}
    return report


def write_outputs(
    shard_dirs: list[Path], kind: str, state: KindState, out: Path
) -> dict[str, dict[str, int]]:
    """Pass 2: data/<kind>.jsonl, decisions/<kind>.jsonl, rejects; per source out-counts."""
    (out / "data").mkdir(parents=True, exist_ok=True)
    (out / "decisions").mkdir(parents=True, exist_ok=True)
    with (
        (out / "data" / f"{kind}.jsonl").open("w", encoding="utf-8", newline="\n") as data,
        (out / "decisions" / f"{kind}.jsonl").open("w", encoding="utf-8", newline="\n") as log,
        (out / "rejects.jsonl").open("a", encoding="utf-8", newline="\n") as rejects,
    ):
        for line in shard_lines(shard_dirs, kind):
            position = line["pos"]
            decision = state.decided.get(position, {"decision": "kept"})
            record = {k: line[k] for k in ("pos", "source", "file", "line")} | decision
            for key in ("id", "pii"):  # no id: the record was rejected before it had one
                if key in line:
                    record[key] = line[key]
            log.write(json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n")
            if decision["decision"] == "rejected":
                entry = {"kind": kind, **{k: line[k] for k in ("source", "file", "line", "reason")}}
                rejects.write(json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n")
            if decision["decision"] == "kept":
                data.write(json.dumps(line["row"], sort_keys=True, ensure_ascii=False) + "\n")
                _count(state, line["source"], "documents_out")
                _count(state, line["source"], "bytes_out", line["bytes"])
            elif decision["decision"] not in ("rejected", "empty", "filtered"):
                _count(state, line["source"], decision["decision"])
                if decision["decision"] == "decontaminated":
                    state.decontaminated.append(line["id"])
    return state.counts


def gather(
    config: Mapping[str, Any],
    shard_dirs: list[Path],
    index: EvalIndex,
    weights: Mapping[str, Mapping[str, float]],
    out: Path,
    ratios: Mapping[str, Mapping[str, float]] | None = None,
) -> tuple[dict[str, Any], Report, dict[str, dict[str, int]], dict[str, list[str]]]:
    """Decide and write every kind; (curation report, decontamination report, removed documents
    per task, ids of the decontaminated documents per kind). A kind is mixed by ``weights``
    (byte shares) or by ``ratios`` (a fraction of each source), never both."""
    kinds = _kinds(shard_dirs)
    states = {kind: first_pass(shard_dirs, kind) for kind in kinds}
    for kind, state in states.items():
        check_reject_rates(kind, state, config["reject_rate_max"])
    if not config["dedup"]:  # exact duplicates stay (recorded as kept)
        for state in states.values():
            state.decided = {
                p: d for p, d in state.decided.items() if d["decision"] != "exact_duplicate"
            }
    report: dict[str, Any] = {}
    if "pretrain" in states:
        fuzzy = config["fuzzy_dedup"]
        clusters_found = fuzzy_pass(shard_dirs, states["pretrain"], fuzzy["enabled"])
        report["fuzzy_clusters"] = clusters_found
    scans = [json.loads((d / "scan.json").read_text("utf-8")) for d in shard_dirs]
    decont = merge_scans(index, scans, config["threshold"])
    removed_per_task = decontamination_pass(states, decont, config["decontaminate"])
    mixes = {}
    for kind, kind_weights in weights.items():
        if kind in states and kind_weights:
            mixes[kind] = mix_pass(states[kind], kind_weights, config["seed"])
    for kind, kind_ratios in (ratios or {}).items():
        if kind in mixes and kind_ratios:
            raise CurateError(
                f"sources.{kind}: {', '.join(sorted(weights[kind]))} name a weight and "
                f"{', '.join(sorted(kind_ratios))} a ratio (their source.json); a kind is mixed "
                "one way: remove weight or ratio from its sources and rerun their source jobs"
            )
        if kind in states and kind_ratios:
            mixes[kind] = ratio_pass(states[kind], kind_ratios, config["seed"])
    (out / "rejects.jsonl").write_text("", encoding="utf-8")
    for kind in kinds:
        per_source = write_outputs(shard_dirs, kind, states[kind], out)
        report[kind] = kind_report(per_source)
        if kind == "pretrain":
            report[kind]["filters"] = dict(sorted(states[kind].filters.items()))
        if kind in mixes:
            report[kind]["mix"] = mixes[kind]
    removed = {kind: state.decontaminated for kind, state in states.items()}
    return report, decont, removed_per_task, removed


COUNTERS = (
    "documents_in", "rejected", "empty", "filtered", "exact_duplicate", "fuzzy_duplicate",
    "decontaminated", "mixed_out", "documents_out", "bytes_in", "bytes_out",
)  # fmt: skip


def kind_report(per_source: Mapping[str, Mapping[str, int]]) -> dict[str, Any]:
    """Totals and per-source counters, every counter present (0 when nothing happened)."""
    sources = {s: {c: counters.get(c, 0) for c in COUNTERS} for s, counters in per_source.items()}
    totals = {c: sum(s[c] for s in sources.values()) for c in COUNTERS}
    return totals | {"sources": dict(sorted(sources.items()))}


def _kinds(shard_dirs: list[Path]) -> list[str]:
    from stages.curate.feeds import KINDS

    return [kind for kind in KINDS if any((d / f"{kind}.jsonl").is_file() for d in shard_dirs)]


__all__ = ["DECISIONS", "CurateError", "gather"]
