"""MLflow lineage: one parent run per workflow invocation, one child run per job.

Everything a job sends to MLflow is first built as a plain JSON *event* from its manifest (no
MLflow import, allow-listed data only, secrets scrubbed). The event is applied to the tracking
store by ``reprolm.tracking_store``; when the store cannot be reached the same event is written
to the spool (``<workdir>/.reprolm/mlflow-spool/``) and ``reprolm mlflow sync`` replays it
later through the same code path, idempotently. Tracking problems never fail a job.

Environment (all optional):

* ``MLFLOW_TRACKING_URI`` — the store; default ``sqlite:///<workdir>/mlruns.db`` with artifacts
  under ``<workdir>/mlartifacts`` (``REPROLM_MLFLOW_ARTIFACT_ROOT`` overrides the latter).
* ``REPROLM_MLFLOW`` — ``off`` disables tracking; ``on`` enables it outside a workflow (a job
  run by hand). Inside a workflow the ``onstart`` hook enables it by exporting
  ``REPROLM_MLFLOW_INVOCATION`` (and ``REPROLM_MLFLOW_PARENT_RUN`` once the parent run exists).
* ``REPROLM_MLFLOW_MODE`` — ``direct`` (each job logs its own run, ~2-4 s per job for importing
  MLflow) or ``deferred`` (jobs only spool, ~0.01 s; the workflow's end hook replays the spool).
  Default: ``direct`` for a tracking server, ``deferred`` for the embedded SQLite store, where
  per-job logging costs seconds per job and parallel jobs contend for the database lock.
* ``REPROLM_MLFLOW_EXPERIMENT`` (default ``reprolm``), ``REPROLM_MLFLOW_SPOOL`` (spool dir),
  ``REPROLM_MLFLOW_CONNECT_TIMEOUT`` (seconds, default 2).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import sys
import time
import traceback
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from reprolm.environment import ENV_ALLOW_LIST
from reprolm.stagetable import CHECKPOINT_STAGES

ENV_ENABLE = "REPROLM_MLFLOW"
ENV_MODE = "REPROLM_MLFLOW_MODE"
ENV_INVOCATION = "REPROLM_MLFLOW_INVOCATION"
ENV_PARENT = "REPROLM_MLFLOW_PARENT_RUN"
ENV_EXPERIMENT = "REPROLM_MLFLOW_EXPERIMENT"
ENV_SPOOL = "REPROLM_MLFLOW_SPOOL"
ENV_ARTIFACT_ROOT = "REPROLM_MLFLOW_ARTIFACT_ROOT"
ENV_CONNECT_TIMEOUT = "REPROLM_MLFLOW_CONNECT_TIMEOUT"
DEFAULT_EXPERIMENT = "reprolm"
SPOOL_DIR = Path(".reprolm") / "mlflow-spool"
EVENT_SCHEMA = 1
# A run id returned while the run exists only in the spool; resolvable after sync by its tag.
CLIENT_ID_PREFIX = "event:"
# MLflow's own client defaults retry for minutes; an unreachable server must cost seconds.
MLFLOW_ENV_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_DISABLE_TELEMETRY": "true",  # no network at run time
}
# Manifest environment fields that may be sent (anything else, e.g. a future field, is dropped).
ENV_FIELDS = (
    "python", "implementation", "platform", "machine", "cpu_model", "cpu_count", "host",
    "threads", "world_size", "accelerators", "container_image", "package_set_hash",
    "lock_file_hash",
)  # fmt: skip
CODE_FIELDS = ("commit", "dirty", "diff_hash", "code_digest", "reprolm_digest", "platform_digest")
# Names of environment variables whose values must never leave the process.
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|API_?KEY|ACCESS_?KEY|PRIVATE|CREDENTIAL|AUTH", re.I)
INVALID_KEY_CHARS = re.compile(r"[^0-9A-Za-z_\-. /:]")


# --------------------------------------------------------------------------- settings


def workdir() -> Path:
    """The working directory the workflow runs in (artifact paths are relative to it)."""
    return Path.cwd()


def tracking_uri(where: Path | None = None) -> str:
    """``MLFLOW_TRACKING_URI``, else the embedded SQLite store under the working directory."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{(Path(where or workdir()) / 'mlruns.db').resolve()}"


def artifact_location(where: Path | None = None) -> str | None:
    """Artifact root for a new experiment: explicit for local stores, the server's otherwise."""
    if os.environ.get(ENV_ARTIFACT_ROOT):
        return os.environ[ENV_ARTIFACT_ROOT]
    if _is_remote(tracking_uri(where)):
        return None
    return (Path(where or workdir()) / "mlartifacts").resolve().as_uri()


def spool_dir(where: Path | None = None) -> Path:
    return Path(os.environ.get(ENV_SPOOL) or Path(where or workdir()) / SPOOL_DIR)


def experiment_name() -> str:
    return os.environ.get(ENV_EXPERIMENT) or DEFAULT_EXPERIMENT


def enabled() -> bool:
    """Jobs track inside a workflow (invocation exported) or when asked to; ``off`` wins."""
    flag = os.environ.get(ENV_ENABLE, "").strip().lower()
    if flag in ("off", "0", "false", "no"):
        return False
    return bool(os.environ.get(ENV_INVOCATION)) or flag in ("on", "1", "true", "yes")


def masked_uri(uri: str) -> str:
    """The URI without user:password, for printing."""
    parts = urlsplit(uri)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
        return parts._replace(netloc=netloc).geturl()
    return uri


def _is_remote(uri: str) -> bool:
    return urlsplit(uri).scheme in ("http", "https")


def _apply_mlflow_env() -> None:
    for name, value in MLFLOW_ENV_DEFAULTS.items():
        os.environ.setdefault(name, value)


def reachable(uri: str | None = None) -> bool:
    """A fast TCP probe of a remote tracking server (local stores are always reachable)."""
    uri = uri or tracking_uri()
    if not _is_remote(uri):
        return True
    parts = urlsplit(uri)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    timeout = float(os.environ.get(ENV_CONNECT_TIMEOUT) or 2)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


class Unreachable(ConnectionError):
    """The tracking store cannot be reached now; the event belongs in the spool."""


def _client(uri: str | None = None) -> Any:
    """An ``MlflowClient`` for the store (imports MLflow: ~2 s, hence only here)."""
    uri = uri or tracking_uri()
    if not reachable(uri):
        raise Unreachable(f"MLflow tracking server {masked_uri(uri)} is not reachable")
    _apply_mlflow_env()
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _is_connection_error(error: BaseException) -> bool:
    """Whether a failure means "try later" (server down, timeout, locked SQLite)."""
    text = f"{type(error).__name__}: {error}".lower()
    markers = (
        "connection", "timed out", "timeout", "max retries", "unreachable", "database is locked",
        "temporarily unavailable", "503", "502", "504",
    )  # fmt: skip
    return isinstance(error, (ConnectionError, TimeoutError)) or any(m in text for m in markers)


# --------------------------------------------------------------------------- scrubbing


def _secret_values() -> list[str]:
    """Values of secret-looking environment variables (long enough to be worth matching)."""
    values = {v for k, v in os.environ.items() if SECRET_NAME.search(k) and len(v) >= 6}
    return sorted(values, key=len, reverse=True)


def scrub(value: Any, secrets: list[str] | None = None) -> Any:
    """Replace any secret environment value inside strings (defence behind the allow-lists)."""
    secrets = _secret_values() if secrets is None else secrets
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, "[redacted]")
        return value
    if isinstance(value, dict):
        return {scrub(k, secrets): scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v, secrets) for v in value]
    return value


# --------------------------------------------------------------------------- events


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


# --------------------------------------------------------------------------- spool


def spool(event: dict[str, Any], where: Path | None = None) -> Path:
    """Write an event atomically into the spool; file names sort in the order of writing."""
    directory = spool_dir(where)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{time.time_ns():020d}-{event['kind']}-{event['event_id']}.json"
    path = directory / name
    tmp = directory / f".{name}.tmp"
    tmp.write_text(json.dumps(event, sort_keys=True, indent=1), encoding="utf-8")
    tmp.rename(path)
    return path


def spooled(where: Path | None = None) -> list[Path]:
    directory = spool_dir(where)
    return sorted(directory.glob("*.json")) if directory.is_dir() else []


def sync(where: Path | None = None, spool_path: Path | None = None) -> dict[str, Any]:
    """Replay spooled events in order; remove each one applied. Stops at the first outage."""
    directory = Path(spool_path) if spool_path else spool_dir(where)
    files = sorted(directory.glob("*.json")) if directory.is_dir() else []
    result: dict[str, Any] = {"replayed": [], "failed": [], "remaining": 0, "reachable": True}
    if not files:
        return result
    try:
        client = _client()
    except Exception as error:
        result.update(reachable=False, remaining=len(files), error=str(error))
        return result
    from reprolm import tracking_store

    for index, path in enumerate(files):
        try:
            event = json.loads(path.read_text(encoding="utf-8"))
            run_id = tracking_store.apply_event(client, event, artifact_location(where))
        except Exception as error:
            if _is_connection_error(error):
                result.update(reachable=False, remaining=len(files) - index, error=str(error))
                return result
            failure = f"{type(error).__name__}: {error}"
            result["failed"].append({"file": str(path), "error": failure})
            continue
        result["replayed"].append({"file": path.name, "run_id": run_id})
        path.unlink()
    result["remaining"] = len(result["failed"])
    return result


# --------------------------------------------------------------------------- public API


def _note(message: str) -> None:
    print(f"reprolm mlflow: {message}", file=sys.stderr, flush=True)


def _deliver(event: dict[str, Any]) -> str | None:
    """Apply an event now; on any failure spool it. Returns the run id, or None if spooled."""
    try:
        client = _client()
        from reprolm import tracking_store

        return tracking_store.apply_event(client, event, artifact_location())
    except Exception as error:
        path = spool(event)
        if _is_connection_error(error):
            _note(f"{error}; spooled to {path} (replay: reprolm mlflow sync)")
        else:
            _note(f"logging failed ({type(error).__name__}: {error}); spooled to {path}")
            traceback.print_exc(file=sys.stderr)
        return None


def mode() -> str:
    """``direct`` or ``deferred`` (see the module docstring for the default)."""
    default = "direct" if _is_remote(tracking_uri()) else "deferred"
    return os.environ.get(ENV_MODE, default).lower()


def log_job(manifest: dict[str, Any], log_history: list[dict] | None) -> str | None:
    """Log one finished job as a child run of the workflow's parent run; never raises.

    Returns the MLflow run id, or ``event:<id>`` (a deterministic client-side id, resolvable by
    ``run_status`` once ``reprolm mlflow sync`` has replayed it) when the event was spooled, or
    None when tracking is disabled.
    """
    if not enabled():
        return None
    started = time.perf_counter()
    try:
        event = build_job_event(manifest, log_history)
        if mode() == "deferred":
            spool(event)
            return CLIENT_ID_PREFIX + event["event_id"]
        run_id = _deliver(event)
        _note(f"run {run_id or 'spooled'} ({time.perf_counter() - started:.2f} s)")
        return run_id or CLIENT_ID_PREFIX + event["event_id"]
    except Exception:  # a tracking bug must never fail the job
        traceback.print_exc(file=sys.stderr)
        return None


def start_workflow(recipe: str | None = None, jobs: int | None = None) -> str | None:
    """Snakemake ``onstart``: create the parent run and export its id to every job."""
    if os.environ.get(ENV_ENABLE, "").strip().lower() in ("off", "0", "false", "no"):
        return None
    try:
        from reprolm.environment import git_state

        invocation = os.environ.get(ENV_INVOCATION) or uuid.uuid4().hex
        os.environ[ENV_INVOCATION] = invocation
        event = build_workflow_event(
            invocation, recipe=recipe, jobs=jobs, commit=git_state().get("commit")
        )
        run_id = _deliver(event)
        if run_id:
            os.environ[ENV_PARENT] = run_id
            _note(f"parent run {run_id} in {masked_uri(tracking_uri())}")
        return run_id
    except Exception:
        traceback.print_exc(file=sys.stderr)
        return None


def end_workflow(success: bool) -> dict[str, Any] | None:
    """Snakemake ``onsuccess``/``onerror``: close the parent run, then replay the spool."""
    invocation = os.environ.get(ENV_INVOCATION)
    if not invocation or not enabled():
        return None
    try:
        event = {
            "schema": EVENT_SCHEMA,
            "kind": "workflow_end",
            "event_id": f"{invocation}-end",
            "invocation": invocation,
            "experiment": experiment_name(),
            "status": "FINISHED" if success else "FAILED",
            "end_time": int(time.time() * 1000),
        }
        if spooled():
            # Keep the order: the end event goes behind what is already waiting.
            spool(event)
        else:
            _deliver(event)
        result = sync()
        if result["replayed"] or result["remaining"]:
            _note(f"replayed {len(result['replayed'])} spooled events, {result['remaining']} left")
        return result
    except Exception:
        traceback.print_exc(file=sys.stderr)
        return None


def run_status(run_id: str, where: Path | None = None) -> dict[str, Any]:
    """What the tracking store says about a manifest's ``mlflow_run_id`` (for ``audit``).

    ``{"exists", "run_id", "fingerprint", "digest", "stage", "status", "spooled",
    "reachable", "error"}``; ``event:<id>`` ids are resolved through their tag.
    """
    result: dict[str, Any] = {
        "exists": False, "run_id": run_id, "fingerprint": None, "digest": None, "stage": None,
        "status": None, "spooled": False, "reachable": True, "error": None,
    }  # fmt: skip
    try:
        if run_id.startswith(CLIENT_ID_PREFIX):
            eid = run_id[len(CLIENT_ID_PREFIX) :]
            result["spooled"] = any(eid in p.name for p in spooled(where))
        client = _client(tracking_uri(where))
        from reprolm import tracking_store

        run = tracking_store.find_run(client, run_id, experiment_name())
        if run is not None:
            tags = run.data.tags
            result.update(
                exists=True,
                run_id=run.info.run_id,
                fingerprint=tags.get("reprolm.fingerprint"),
                digest=tags.get("reprolm.digest"),
                stage=tags.get("reprolm.stage"),
                status=run.info.status,
            )
    except Exception as error:
        result["reachable"] = not _is_connection_error(error)
        result["error"] = f"{type(error).__name__}: {error}"
    return result


def latest_runs(where: Path | None = None) -> dict[str, Any]:
    """The newest workflow invocation's parent run and its child runs (for ``mlflow runs``)."""
    client = _client(tracking_uri(where))
    from reprolm import tracking_store

    return tracking_store.latest_invocation(client, experiment_name())
