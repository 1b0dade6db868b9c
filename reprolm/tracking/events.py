"""Tracking events: what a job or workflow sends to MLflow, as plain JSON built from manifests.

Allow-listed data only (``ENV_FIELDS``, ``CODE_FIELDS``, ``ENV_ALLOW_LIST``), secrets scrubbed;
no MLflow import.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from reprolm.environment import ENV_ALLOW_LIST
from reprolm.stagetable import CHECKPOINT_STAGES
from reprolm.tracking.config import ENV_INVOCATION, ENV_PARENT, experiment_name
from reprolm.tracking.scrub import scrub

EVENT_SCHEMA = 1
# A run id returned while the run exists only in the spool; resolvable after sync by its tag.
CLIENT_ID_PREFIX = "event:"
# Manifest environment fields that may be sent (anything else, e.g. a future field, is dropped).
ENV_FIELDS = (
    "python", "implementation", "platform", "machine", "cpu_model", "cpu_count", "host",
    "threads", "world_size", "accelerators", "container_image", "package_set_hash",
    "lock_file_hash",
)  # fmt: skip
CODE_FIELDS = ("commit", "dirty", "diff_hash", "code_digest", "reprolm_digest", "platform_digest")
INVALID_KEY_CHARS = re.compile(r"[^0-9A-Za-z_\-. /:]")


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """Nested dicts to ``a.b.c`` keys; lists and scalars as compact JSON text."""
    if isinstance(value, dict) and value:
        flat: dict[str, str] = {}
        for key, sub in sorted(value.items()):
            flat.update(flatten(sub, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: _text(value)} if prefix else {}


def _key(name: str) -> str:
    """A metric/param name MLflow accepts (it refuses e.g. commas and brackets)."""
    return INVALID_KEY_CHARS.sub("_", name)[:250]


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return None


def _millis(iso: str | None, default: int) -> int:
    if not iso:
        return default
    try:
        return int(datetime.fromisoformat(iso).timestamp() * 1000)
    except ValueError:
        return default


def event_id(invocation: str, fingerprint: str, digest: str) -> str:
    """Deterministic id of a job's run within an invocation (the duplicate-detection key)."""
    raw = f"{invocation}\0{fingerprint}\0{digest}".encode()
    return hashlib.sha256(raw).hexdigest()[:32]


def artifact_id(manifest: dict[str, Any]) -> str:
    """``<stage>/<label>-<fingerprint>``, the artifact's place under ``artifacts/``."""
    label = manifest.get("label") or manifest["stage"]
    return f"{manifest['stage']}/{label}-{manifest['fingerprint']}"


def _environment_tags(environment: dict[str, Any]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for name in ENV_FIELDS:
        if name in environment:
            tags.update(flatten(environment[name], f"env.{name}"))
    for name, version in sorted((environment.get("packages") or {}).items()):
        tags[f"env.pkg.{name}"] = _text(version)
    for name, value in sorted((environment.get("env") or {}).items()):
        if name in ENV_ALLOW_LIST:
            tags[f"env.var.{name}"] = _text(value)
    for name, value in sorted((environment.get("determinism") or {}).items()):
        tags[f"env.determinism.{name}"] = _text(value)
    return tags


def _metric_rows(manifest: dict[str, Any], log_history: list[dict] | None, ts: int) -> list[list]:
    """``[key, value, step, timestamp]`` rows: summary metrics at step 0, then the curves."""
    rows = []
    for key, value in sorted(flatten(manifest.get("metrics") or {}).items()):
        number = _number(json.loads(value)) if _is_json_number(value) else None
        if number is not None:
            rows.append([_key(key), number, 0, ts])
    for index, entry in enumerate(log_history or []):
        if not isinstance(entry, dict):
            continue
        step = entry.get("step")
        step = int(step) if isinstance(step, int | float) and not isinstance(step, bool) else index
        for key, value in sorted(entry.items()):
            number = _number(value)
            if key != "step" and number is not None:
                rows.append([_key(f"train/{key}"), number, step, ts])
    return rows


def _is_json_number(text: str) -> bool:
    try:
        return _number(json.loads(text)) is not None
    except ValueError:
        return False


def build_job_event(manifest: dict[str, Any], log_history: list[dict] | None) -> dict[str, Any]:
    """The JSON event of one job: everything its child run will hold, scrubbed of secrets."""
    stage, fingerprint, digest = manifest["stage"], manifest["fingerprint"], manifest["digest"]
    label = manifest.get("label") or stage
    invocation = os.environ.get(ENV_INVOCATION, "")
    execution = manifest.get("execution") or {}
    now = int(time.time() * 1000)
    start, end = _millis(execution.get("started"), now), _millis(execution.get("ended"), now)
    code = manifest.get("code") or {}
    reproducibility = manifest.get("reproducibility") or {}
    eid = event_id(invocation, fingerprint, digest)
    tags = {
        "reprolm.kind": "job",
        "reprolm.event_id": eid,
        "reprolm.invocation": invocation,
        "reprolm.stage": stage,
        "reprolm.label": label,
        "reprolm.rule": _text(execution.get("rule") or stage),
        "reprolm.fingerprint": fingerprint,
        "reprolm.digest": digest,
        "reprolm.digest_algorithm": _text(manifest.get("digest_algorithm")),
        "reprolm.artifact": f"artifacts/{artifact_id(manifest)}",
        "reprolm.reproducibility": _text(reproducibility.get("level")),
        "reprolm.reproducibility_spec": _text(reproducibility),
        **{f"reprolm.code.{k}": _text(code[k]) for k in CODE_FIELDS if k in code},
        **_environment_tags(manifest.get("environment") or {}),
    }
    if code.get("commit"):
        tags["mlflow.source.git.commit"] = _text(code["commit"])
    if execution.get("slurm_job_id"):
        tags["reprolm.slurm_job_id"] = _text(execution["slurm_job_id"])
    datasets = [
        {
            "input_name": name,
            "name": f"{rec.get('stage')}/{Path(rec.get('path') or rec['fingerprint']).name}",
            "digest": rec["digest"],
            "stage": rec.get("stage"),
            "fingerprint": rec.get("fingerprint"),
            "source": rec.get("path"),
        }
        for name, rec in sorted((manifest.get("inputs") or {}).items())
    ]
    model_inputs = [d["digest"] for d in datasets if d["stage"] in CHECKPOINT_STAGES]
    model = None
    if stage in CHECKPOINT_STAGES:
        model = {
            "name": f"{stage}-{label}-{fingerprint}",
            "digest": digest,
            "model_type": "checkpoint",
            "tags": {
                "reprolm.digest": digest,
                "reprolm.fingerprint": fingerprint,
                "reprolm.stage": stage,
                "reprolm.artifact": tags["reprolm.artifact"],
                "reprolm.uri": f"artifacts/{artifact_id(manifest)}/model",
            },
        }
    event = {
        "schema": EVENT_SCHEMA,
        "kind": "job",
        "event_id": eid,
        "invocation": invocation,
        "parent_run_id": os.environ.get(ENV_PARENT) or None,
        "experiment": experiment_name(),
        "run_name": f"{stage}:{label}-{fingerprint}",
        "start_time": start,
        "end_time": max(end, start),
        "tags": tags,
        "params": flatten(manifest.get("config") or {}),
        "metrics": _metric_rows(manifest, log_history, max(end, start)),
        "datasets": datasets,
        "model": model,
        "model_inputs": model_inputs,
        # Eval scores are attached to the checkpoint they measure, so the model lists them too.
        "metric_model": model_inputs[0] if stage == "evaluate" and model_inputs else None,
    }
    return scrub(event)


def build_workflow_event(
    invocation: str, *, recipe: str | None, jobs: int | None, commit: str | None
) -> dict[str, Any]:
    now = int(time.time() * 1000)
    tags = {
        "reprolm.kind": "workflow",
        "reprolm.event_id": invocation,
        "reprolm.invocation": invocation,
        "reprolm.recipe": _text(recipe),
        "reprolm.jobs": _text(jobs),
    }
    if commit:
        tags["mlflow.source.git.commit"] = commit
        tags["reprolm.code.commit"] = commit
    return scrub(
        {
            "schema": EVENT_SCHEMA,
            "kind": "workflow",
            "event_id": invocation,
            "invocation": invocation,
            "experiment": experiment_name(),
            "run_name": f"workflow:{recipe or 'recipe'}",
            "start_time": now,
            "tags": tags,
        }
    )
