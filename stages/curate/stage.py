"""curate stage: gather the curated shards into the curated training sets.

With `curate.shards` above 1 the shards come from curate_shard jobs (inputs ``shard_<range>``);
with one shard this job curates it itself, into a scratch directory, so the payload is the same
either way. The curation itself: stages/curate/shard.py (per position) and gather.py (across
shards). Quality filters, PII masking and MinHash use datatrove's blocks where it has them
(filters.py, pii.py, minhash.py); decontamination is hand-written (decontaminate.py says why).
"""

from __future__ import annotations

import json
import pathlib
import tempfile

from stages.common.job import Input, JobContext
from stages.common.jsonl import write_json
from stages.curate.decontaminate import EvalIndex, Report
from stages.curate.evalsets import SPEC_PREFIX, load_spec_eval
from stages.curate.feeds import KINDS
from stages.curate.gather import CurateError, gather
from stages.curate.shard import curate_shards, eval_instances

__all__ = ["CurateError", "run"]


def shard_dirs(inputs: dict[str, Input], shards: int) -> list[pathlib.Path]:
    """The shard directories of the shard_* inputs in shard order, checked to be 0..shards-1."""
    dirs = sorted(
        d
        for name in sorted(inputs)
        if name.startswith("shard_")
        for d in (inputs[name].path / "shards").iterdir()
    )
    seen = [json.loads((d / "shard.json").read_text("utf-8")) for d in dirs]
    if [s["shard"] for s in seen] != list(range(shards)) or {s["shards"] for s in seen} != {shards}:
        raise CurateError(
            f"curate: the shard inputs hold shards {[s['shard'] for s in seen]} of "
            f"{sorted({s['shards'] for s in seen})}, not 0..{shards - 1} of {shards}"
        )
    return dirs


def source_weights(inputs: dict[str, Input], key: str = "weight") -> dict[str, dict[str, float]]:
    """Kind -> {source: value of ``key``} for kinds whose sources name one: the weight mix, or
    with ``key="ratio"`` the ratio mix (a source.json has `ratio` only when it was set)."""
    weights: dict[str, dict[str, float]] = {}
    for name in sorted(inputs):
        if name.startswith("source_"):
            record = json.loads((inputs[name].path / "source.json").read_text("utf-8"))
            if record.get(key) is not None:
                weights.setdefault(record["kind"], {})[record["name"]] = record[key]
    return weights


def _legacy_counts(totals: dict) -> dict[str, int]:
    """The counters curation.json had before sharding, kept for its readers."""
    normalized = totals["documents_in"] - totals["rejected"] - totals["empty"]
    deduped = normalized - totals["filtered"] - totals["exact_duplicate"]
    deduped -= totals["fuzzy_duplicate"]
    return {
        "after_normalize": normalized,
        "after_dedup": deduped,
        "after_decontamination": deduped - totals["decontaminated"],
    }


def _decontamination_document(
    config: dict,
    report: Report,
    removed_per_task: dict,
    removed_ids: dict[str, list[str]],
    inputs: dict[str, Input],
) -> dict:
    removed = {kind: {"documents": len(ids), "ids": ids} for kind, ids in removed_ids.items()}
    world_sets = {t: v for t, v in report.tasks.items() if not t.startswith(SPEC_PREFIX)}
    document = {
        "ngram": config["ngram"],
        "threshold": config["threshold"],
        "eval_sets": world_sets,
        "removed": removed,
        "removed_per_eval_set": removed_per_task,
    }
    if "evaldata" in inputs:  # absent without specs: such a payload stays as it was
        meta = load_spec_eval(inputs["evaldata"].path)[1]
        document["spec_sets"] = {
            name: {**entry, **report.tasks.get(SPEC_PREFIX + name, {})}
            for name, entry in meta.items()
        }
    return document


def run(
    config: dict, inputs: dict[str, Input], output_dir: pathlib.Path, context: JobContext
) -> dict:
    """Write data/*.jsonl, decisions/*.jsonl, rejects.jsonl, decontamination.json and
    curation.json; return the counts as metrics."""
    if "world" not in inputs:
        raise KeyError("curate: needs input 'world' (a world artifact directory)")
    index = EvalIndex.build(eval_instances(inputs), config["ngram"])
    weights, ratios = source_weights(inputs), source_weights(inputs, "ratio")
    if any(name.startswith("shard_") for name in inputs):
        dirs = shard_dirs(inputs, config["shards"])
        report, decont, removed_per_task, removed_ids = gather(
            config, dirs, index, weights, output_dir, ratios
        )
    else:
        if config["shards"] != 1:
            raise CurateError(f"curate: shards={config['shards']} but no shard_* inputs")
        with tempfile.TemporaryDirectory(prefix="reprolm-curate-") as scratch:
            curate_shards(config, inputs, pathlib.Path(scratch), 0, 1)
            dirs = sorted(pathlib.Path(scratch).iterdir())
            report, decont, removed_per_task, removed_ids = gather(
                config, dirs, index, weights, output_dir, ratios
            )
    for kind in KINDS:
        if kind in report:
            report[kind] |= _legacy_counts(report[kind])
    write_json(output_dir / "curation.json", report)
    document = _decontamination_document(config, decont, removed_per_task, removed_ids, inputs)
    write_json(output_dir / "decontamination.json", document)
    return _metrics(report, decont)


def _metrics(report: dict, decont: Report) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for kind in KINDS:
        for key, value in report.get(kind, {}).items():
            if isinstance(value, int | float):
                metrics[f"{kind}_{key}"] = value
        for source, counters in report.get(kind, {}).get("sources", {}).items():
            for key in ("documents_in", "rejected", "documents_out", "bytes_out"):
                metrics[f"{kind}.{source}_{key}"] = counters[key]
    if "fuzzy_clusters" in report:
        metrics["pretrain_fuzzy_clusters"] = report["fuzzy_clusters"]
    for task, stats in decont.tasks.items():  # spec sets as "evaldata/<name>_flagged"
        metrics[f"{task}_flagged"] = stats["flagged"]
        metrics[f"{task}_contamination"] = stats["contamination"]
    return metrics
