"""The result envelope, its one writer, and recomputation from saved predictions.

Every evaluation result, of a registered spec or of a tiny-world task, is one envelope built by
:func:`envelope` (``task_id``, ``kind``, ``spec_hash``, ``spec``, ``metrics``,
``primary_metric`` chosen by :func:`primary_metric`, ``primary``, ``instances`` and the
family's fields: ``limit``, ``model``, ``harness``, ``files``, ...) and written by
:func:`write_result` into a result directory: ``result.json`` plus ``predictions.jsonl`` (one
row per instance: what the metrics are computed from). ``recompute`` re-derives every metric
from the predictions alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from evals.families import family
from evals.sources import digest, read_jsonl
from evals.spec import TaskSpec, resolve, spec_hash
from reprolm.canonical import canonical_json, dump_json

SCHEMA = "reprolm.eval.result/1"
RESULT = "result.json"
PREDICTIONS = "predictions.jsonl"


def primary_metric(spec: TaskSpec, metrics: dict[str, float], fallback: str | None = None) -> str:
    """The headline metric: the spec's, else ``fallback`` (a family's stand-in when the data
    did not allow the spec's, e.g. custom regions) when that one was computed."""
    for name in (spec.primary_metric, fallback):
        if name is not None and name in metrics:
            return name
    raise KeyError(
        f"{spec.task_id}: primary metric {spec.primary_metric!r} was not computed "
        f"(metrics: {', '.join(sorted(metrics))})"
    )


def envelope(
    spec: TaskSpec,
    kind: str,
    resolved: dict[str, Any],
    metrics: dict[str, float],
    *,
    instances: int,
    fallback: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """The result of one evaluation: the spec's identity and hash, every metric, the primary
    one, and the family's ``fields`` (``limit``, ``model``, ``harness``, ``files``, ...)."""
    primary = primary_metric(spec, metrics, fallback)
    return {
        "task_id": spec.task_id,
        "kind": kind,
        "spec_hash": spec_hash(resolved),
        "spec": resolved,
        "metrics": metrics,
        "primary_metric": primary,
        "primary": metrics[primary],
        "instances": instances,
        **fields,
    }


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
    result = envelope(
        spec,
        kind,
        resolved,
        metrics,
        instances=len(rows),
        model={"predictions": digest(predictions)},
    )
    if out_dir:
        write_result(out_dir, result, rows)
        return load_result(out_dir)
    return result


def scored_file(
    spec: TaskSpec,
    kind: str,
    score_rows: Callable[[list[dict], str], list[dict]],
    predictions: Path,
    data: Path | None,
    out_dir: Path | None,
) -> dict[str, Any]:
    """:func:`scored_result` of ``score_rows(rows of the predictions JSONL, its path)``; the
    data JSONL, when given, only resolves the spec."""
    data_rows = read_jsonl(data) if data else []
    rows = score_rows(read_jsonl(predictions), str(predictions))
    return scored_result(
        spec, kind, rows, predictions=predictions, data=data, data_rows=len(data_rows),
        out_dir=out_dir,
    )  # fmt: skip


def with_sources(
    predictions: Path,
    data_rows: list[dict],
    key: str,
    needs: Sequence[str],
    has_gold: Callable[[dict], bool],
    gold_fields: str,
) -> Iterator[tuple[dict, dict]]:
    """Each row of a predictions file with the row its gold comes from: the data row with the
    same ``key``, else the prediction itself. A row lacking any of ``needs``, or whose source
    has no gold (``has_gold``; ``gold_fields`` names what it needs), is refused by line."""
    known = {r.get(key): r for r in data_rows}
    for number, pred in enumerate(read_jsonl(predictions), 1):
        at = f"{predictions}:{number}"
        if any(k not in pred for k in needs):
            raise ValueError(f"{at}: needs {' and '.join(repr(k) for k in needs)}")
        source = known.get(pred.get(key), pred)
        if not has_gold(source):
            raise ValueError(
                f"{at}: {key} not in the dataset given with --data and no {gold_fields} of its own"
            )
        yield pred, source


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


def update_result(out_dir: Path, **fields: Any) -> dict[str, Any]:
    """Add fields a job records after the run (e.g. ``decontamination``) to a written result."""
    result = {**load_result(out_dir), **fields}
    (out_dir / RESULT).write_text(dump_json(result), encoding="utf-8")
    return result


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


def result_files(root: Path) -> list[Path]:
    """Every ``result.json`` under a directory (an evaluate artifact: ``specs/*/``), sorted."""
    return sorted(p for p in root.rglob(RESULT) if p.is_file())


def recompute_all(root: Path) -> dict[str, Any]:
    """:func:`recompute` every result under ``root``; ``problems`` name their result."""
    found = result_files(root)
    if not found:
        raise FileNotFoundError(f"{root}: no {RESULT} under this directory")
    reports = [recompute(path) for path in found]
    problems = [f"{r['result']}: {problem}" for r in reports for problem in r["problems"]]
    return {"root": str(root), "results": reports, "problems": problems}
