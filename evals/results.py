"""Result files of an evaluation and their recomputation from saved predictions.

A result directory holds ``result.json`` (metrics, spec hash, resolved spec, model digest,
harness and package versions) and ``predictions.jsonl`` (one row per instance: what the
metrics are computed from). ``recompute`` re-derives every metric from the predictions alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evals.families import family
from evals.sources import digest, read_jsonl
from evals.spec import TaskSpec, resolve, spec_hash
from reprolm.canonical import canonical_json, dump_json

SCHEMA = "reprolm.eval.result/1"
RESULT = "result.json"
PREDICTIONS = "predictions.jsonl"


def compute_metrics(kind: str, rows: list[dict], spec: dict[str, Any]) -> dict[str, float]:
    """Every metric of a result, from its prediction rows and resolved spec (the family's)."""
    return family(kind).metrics(rows, spec)


def scored_result(
    spec: TaskSpec,
    kind: str,
    rows: list[dict],
    *,
    predictions: Path,
    data: Path | None,
    data_rows: int,
    out_dir: Path | None,
) -> dict[str, Any]:
    """The result of outputs produced elsewhere (no model): metrics from ``rows``, the spec
    resolved against ``data`` when given, the predictions file's digest as the model's identity.
    Written to ``out_dir`` when given."""
    resolved = resolve(spec, data, data_rows) if data else spec.to_dict()
    metrics = compute_metrics(kind, rows, resolved)
    result: dict[str, Any] = {
        "task_id": spec.task_id,
        "kind": kind,
        "spec_hash": spec_hash(resolved),
        "spec": resolved,
        "metrics": metrics,
        "primary_metric": spec.primary_metric,
        "primary": metrics[spec.primary_metric],
        "instances": len(rows),
        "model": {"predictions": digest(predictions)},
    }
    if out_dir:
        write_result(out_dir, result, rows)
        return load_result(out_dir)
    return result


def write_result(out_dir: Path, result: dict[str, Any], rows: list[dict]) -> Path:
    """Write predictions then ``result.json`` (with the predictions' digest); return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    predictions = out_dir / PREDICTIONS
    predictions.write_text("".join(canonical_json(r) + "\n" for r in rows), encoding="utf-8")
    result = {
        **result,
        "schema": SCHEMA,
        "files": {**result.get("files", {}), "predictions": _file(out_dir, PREDICTIONS)},
    }
    path = out_dir / RESULT
    path.write_text(dump_json(result), encoding="utf-8")
    return path


def _file(out_dir: Path, name: str) -> dict[str, str]:
    return {"path": name, "blake3": digest(out_dir / name)}


def load_result(path: Path) -> dict[str, Any]:
    """A ``result.json`` (or the directory holding one)."""
    path = path / RESULT if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no evaluation result here (expected {RESULT})")
    result = json.loads(path.read_text(encoding="utf-8"))
    if result.get("schema") != SCHEMA:
        raise ValueError(f"{path}: 'schema' is {result.get('schema')!r}, expected {SCHEMA!r}")
    return result


def recompute(path: Path) -> dict[str, Any]:
    """Recompute a result's metrics from its predictions; report every difference.

    Returns ``{"result", "stored", "recomputed", "problems"}``; ``problems`` is empty when the
    predictions file matches its recorded digest and every metric is bit-for-bit equal.
    """
    path = path / RESULT if path.is_dir() else path
    result = load_result(path)
    record = result["files"]["predictions"]
    predictions = path.parent / record["path"]
    problems = []
    if digest(predictions) != record["blake3"]:
        problems.append(f"{predictions}: blake3 differs from the one recorded in {path}")
    rows = read_jsonl(predictions)
    recomputed = compute_metrics(result["kind"], rows, result["spec"])
    stored = result["metrics"]
    for name in sorted(set(stored) | set(recomputed)):
        a, b = stored.get(name), recomputed.get(name)
        if a is None or b is None or float(a).hex() != float(b).hex():
            problems.append(f"metric {name}: stored {a!r}, recomputed {b!r}")
    return {"result": str(path), "stored": stored, "recomputed": recomputed, "problems": problems}
