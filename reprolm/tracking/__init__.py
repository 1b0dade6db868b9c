"""MLflow lineage: one parent run per workflow invocation, one child run per job.

Everything a job sends to MLflow is first built as a plain JSON *event* from its manifest (no
MLflow import, allow-listed data only, secrets scrubbed). The event is applied to the tracking
store by ``reprolm.tracking.store``; when the store cannot be reached the same event is written
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
* ``REPROLM_MLFLOW_LIVE`` (``off``: no live training metrics), ``REPROLM_MLFLOW_LIVE_INTERVAL``
  (seconds between live batches, default 10).
* ``REPROLM_MLFLOW_EXPERIMENT`` (default ``reprolm``), ``REPROLM_MLFLOW_SPOOL`` (spool dir),
  ``REPROLM_MLFLOW_CONNECT_TIMEOUT`` (seconds, default 2).

Modules: ``config`` (settings, connection), ``scrub`` (secrets), ``events`` (event building),
``spool``, ``sync`` (replay), ``live`` (training metrics while a job trains), ``delivery`` (the
API below that jobs and hooks call), ``queries`` (run status and what it means for ``reprolm
audit``, latest runs), ``store`` (applies events with ``MlflowClient``; imports MLflow).
"""

from __future__ import annotations

from reprolm.tracking.config import (
    DEFAULT_EXPERIMENT,
    ENV_ARTIFACT_ROOT,
    ENV_CONNECT_TIMEOUT,
    ENV_ENABLE,
    ENV_EXPERIMENT,
    ENV_INVOCATION,
    ENV_MODE,
    ENV_PARENT,
    ENV_SPOOL,
    MLFLOW_ENV_DEFAULTS,
    SPOOL_DIR,
    Unreachable,
    artifact_location,
    connect,
    enabled,
    experiment_name,
    is_connection_error,
    is_remote,
    masked_uri,
    mode,
    reachable,
    spool_dir,
    tracking_uri,
    workdir,
)
from reprolm.tracking.delivery import end_workflow, log_job, start_workflow
from reprolm.tracking.events import (
    CHECKPOINT_STAGES,
    CLIENT_ID_PREFIX,
    CODE_FIELDS,
    ENV_FIELDS,
    EVENT_SCHEMA,
    _key,
    artifact_id,
    build_job_event,
    build_workflow_event,
    event_id,
    flatten,
)
from reprolm.tracking.queries import (
    judge_run,
    latest_runs,
    run_status,
    sqlite_store,
    unavailable_store,
)
from reprolm.tracking.scrub import SECRET_NAME, scrub
from reprolm.tracking.spool import spool, spooled
from reprolm.tracking.sync import sync

__all__ = [
    "CHECKPOINT_STAGES", "CLIENT_ID_PREFIX", "CODE_FIELDS", "DEFAULT_EXPERIMENT",
    "ENV_ARTIFACT_ROOT", "ENV_CONNECT_TIMEOUT", "ENV_ENABLE", "ENV_EXPERIMENT", "ENV_FIELDS",
    "ENV_INVOCATION", "ENV_MODE", "ENV_PARENT", "ENV_SPOOL", "EVENT_SCHEMA", "MLFLOW_ENV_DEFAULTS",
    "SECRET_NAME", "SPOOL_DIR", "Unreachable", "_key", "artifact_id", "artifact_location",
    "build_job_event", "build_workflow_event", "connect", "enabled", "end_workflow", "event_id",
    "experiment_name", "flatten", "is_connection_error", "is_remote", "judge_run", "latest_runs",
    "log_job", "masked_uri", "mode", "reachable", "run_status", "scrub", "spool", "spool_dir",
    "spooled", "sqlite_store", "start_workflow", "sync", "tracking_uri", "unavailable_store",
    "workdir",
]  # fmt: skip
