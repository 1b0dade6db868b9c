"""Audit of outputs produced elsewhere: the ``origin`` check of responses and score artifacts.

A ``responses`` artifact cannot be rebuilt (an API model made it); what the audit can hold it
to is the record the user gave: ``produced_by`` (model, provider, date required) in its manifest's
config, the same record in its payload's ``responses.json``. A ``score`` artifact's
``external.json`` must name the responses input it was scored from (digest) and the spec hash of
its result, whose resolved spec pins the blake3 of the evaldata dataset it read. The check's
detail and the node's ``origin`` say what was found, so the audit of a score reads back to the
user's provenance, the spec hash and the dataset. Reads JSON only (no job code).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reprolm.audit_report import BROKEN, OK, NodeReport

REQUIRED = ("model", "provider", "date")
HASH_CHARS = 8


def _read(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def produced_by_text(record: dict[str, Any]) -> str:
    """``gpt-4o (OpenAI API, 2024-08-06; temperature=0)``: the record in one line."""
    text = f"{record.get('model')} ({record.get('provider')}, {record.get('date')}"
    settings = record.get("generation") or {}
    if settings:
        text += "; " + ", ".join(f"{k}={v}" for k, v in sorted(settings.items()))
    text += ")"
    return text + (f" — {record['notes']}" if record.get("notes") else "")


def _responses(report: NodeReport) -> None:
    config = report.node.manifest.get("config") or {}
    record = config.get("produced_by")
    problems = []
    if not isinstance(record, dict):
        problems.append("config.produced_by missing: the manifest does not say what made them")
        record = {}
    absent = [key for key in REQUIRED if not record.get(key)]
    if absent:
        problems.append(
            f"config.produced_by.{absent[0]} is not set (required: model, provider, date)"
        )
    if report.node.directory is not None:
        payload = _read(report.node.directory / "responses.json")
        if payload is None or payload.get("produced_by") != record:
            problems.append("responses.json's produced_by differs from the manifest's config")
    report.origin = {
        "produced_by": record,
        "task": config.get("task"),
        "source": config.get("path"),
    }
    _verdict(report, problems, f"produced by {produced_by_text(record)}")


def _score(report: NodeReport, lineage: Any) -> None:
    if report.node.directory is None:
        return
    summary = _read(report.node.directory / "external.json") or {}
    result = _read(report.node.directory / str(summary.get("result", "-"))) or {}
    problems = []
    if not summary or not result:
        problems.append("external.json or the result it names is missing or unreadable")
    elif summary.get("spec_hash") != result.get("spec_hash"):
        problems.append("external.json's spec_hash differs from its result's")
    link = report.node.links.get("responses")
    upstream = lineage.nodes.get(link.target) if link is not None and link.target else None
    recorded = (summary.get("responses") or {}).get("digest")
    if upstream is not None and recorded != upstream.manifest.get("digest"):
        problems.append(f"external.json names responses {recorded}, not its input's digest")
    spec = result.get("spec") or {}
    config = report.node.manifest.get("config") or {}
    data = _dataset_digest(report, lineage, config.get("dataset"))
    if data is not None and spec.get("dataset_digest") not in (None, data):
        problems.append(
            f"the result's dataset_digest {spec.get('dataset_digest')} is not evaldata's {data}"
        )
    report.origin = {
        "task_id": result.get("task_id"),
        "spec_hash": result.get("spec_hash"),
        "dataset": config.get("dataset"),
        "dataset_blake3": spec.get("dataset_digest"),
        "produced_by": summary.get("produced_by"),
    }
    detail = (
        f"{result.get('task_id')} spec {str(result.get('spec_hash'))[:HASH_CHARS]} on dataset "
        f"{config.get('dataset')} (blake3 {str(spec.get('dataset_digest'))[:HASH_CHARS]})"
    )
    _verdict(report, problems, detail)


def _dataset_digest(report: NodeReport, lineage: Any, name: str | None) -> str | None:
    link = report.node.links.get("evaldata")
    node = lineage.nodes.get(link.target) if link is not None and link.target else None
    digests = ((node.manifest.get("config") or {}).get("digests") or {}) if node else {}
    return digests.get(name)


def _verdict(report: NodeReport, problems: list[str], detail: str) -> None:
    report.problems += [f"origin: {problem}" for problem in problems]
    report.check("origin", BROKEN if problems else OK, detail)


def check_origin(report: NodeReport, lineage: Any) -> None:
    """The ``origin`` check of a responses or score node (other stages: nothing)."""
    if report.node.stage == "responses":
        _responses(report)
    elif report.node.stage == "score":
        _score(report, lineage)
