"""Turn lm-eval's output into deterministic payload records (no times, hashes or paths)."""

from __future__ import annotations

import json
import pathlib

from stages.evaluate.taskpack import primary_metric

FILTER = "none"  # our tasks define no filters: lm-eval reports every metric as "<metric>,none"


def _metrics(raw: dict) -> dict[str, float]:
    """``{"acc,none": 0.3, "acc_stderr,none": "N/A", "alias": ...}`` -> ``{"acc": 0.3}``."""
    out = {}
    for key, value in raw.items():
        metric, _, filt = key.partition(",")
        if filt == FILTER and not metric.endswith("_stderr"):
            out[metric] = float(value)
    return out


def results_json(
    out: dict,
    index: dict[str, dict],
    tasks: list[str],
    *,
    checkpoint: str,
    chat: dict[str, bool],
    config: dict,
) -> dict:
    """The ``results.json`` document of one evaluation."""
    import lm_eval
    import torch
    import transformers

    return {
        "checkpoint": checkpoint,
        "chat_template": {task: chat[task] for task in tasks},
        "num_fewshot": config["num_fewshot"],
        "limit": config["limit"],
        "tasks": {task: _metrics(out["results"][task]) for task in tasks},
        "instances": {task: int(out["n-samples"][task]["effective"]) for task in tasks},
        "primary_metrics": {task: primary_metric(index[task]["type"]) for task in tasks},
        "task_types": {task: index[task]["type"] for task in tasks},
        "versions": {
            "lm_eval": lm_eval.__version__,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        },
    }


def sample_record(sample: dict) -> dict:
    """One instance: doc id, request arguments, raw and filtered responses, target and scores."""
    return {
        "doc_id": sample["doc_id"],
        "id": sample["doc"].get("id"),
        "arguments": [list(arg) for arg in sample["arguments"]],
        "responses": sample["resps"],
        "filtered_responses": sample["filtered_resps"],
        "target": sample["target"],
        "scores": {metric: sample[metric] for metric in sample["metrics"]},
    }


def dumps(obj: object) -> str:
    """Canonical JSON text: sorted keys, ASCII only."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=True)


def write_json(path: pathlib.Path, obj: object) -> None:
    """Write a sorted-key, indented JSON file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, sort_keys=True, indent=2) + "\n", encoding="utf-8")


def write_samples(path: pathlib.Path, samples: list[dict]) -> None:
    """Write per-instance records as JSONL, ordered by doc id."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = sorted(samples, key=lambda s: s["doc_id"])
    path.write_text("".join(dumps(sample_record(s)) + "\n" for s in rows), encoding="utf-8")


def flat_metrics(results: dict) -> dict[str, float]:
    """``{"<task>/<metric>": value}`` for the runner's summary."""
    return {
        f"{task}/{metric}": value
        for task, metrics in sorted(results["tasks"].items())
        for metric, value in sorted(metrics.items())
    }
