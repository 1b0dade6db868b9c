"""The public API jobs and the workflow hooks call: log a job, open and close the parent run.

Each event is applied to the store now (``direct``) or spooled (``deferred``, or whenever the
store fails); tracking problems never fail a job.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
import uuid
from typing import Any

from reprolm.tracking.config import (
    ENV_ENABLE,
    ENV_INVOCATION,
    ENV_PARENT,
    artifact_location,
    connect,
    enabled,
    experiment_name,
    is_connection_error,
    masked_uri,
    mode,
    tracking_uri,
)
from reprolm.tracking.events import (
    CLIENT_ID_PREFIX,
    EVENT_SCHEMA,
    build_job_event,
    build_workflow_event,
)
from reprolm.tracking.spool import spool, spooled
from reprolm.tracking.sync import sync


def _note(message: str) -> None:
    print(f"reprolm mlflow: {message}", file=sys.stderr, flush=True)


def _deliver(event: dict[str, Any]) -> str | None:
    """Apply an event now; on any failure spool it. Returns the run id, or None if spooled."""
    try:
        client = connect()
        from reprolm.tracking import store

        return store.apply_event(client, event, artifact_location())
    except Exception as error:
        path = spool(event)
        if is_connection_error(error):
            _note(f"{error}; spooled to {path} (replay: reprolm mlflow sync)")
        else:
            _note(f"logging failed ({type(error).__name__}: {error}); spooled to {path}")
            traceback.print_exc(file=sys.stderr)
        return None


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
        from reprolm.tracking import live

        live_id = live.take_id()
        if live_id:  # the run the job opened while training is completed, not duplicated
            event["live_id"] = live_id
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
