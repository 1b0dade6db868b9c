"""Live training metrics: a running job's curve reaches MLflow while it trains, in batches.

A training stage's callback calls ``start(stage, fingerprint)`` once and ``LiveMetrics.log``
at every logging step; that only appends to a buffer. A background thread opens the job's
child run (status RUNNING, tagged ``reprolm.live_id``) and sends what has accumulated every
``REPROLM_MLFLOW_LIVE_INTERVAL`` seconds (default 10) as one ``log_batch`` per 1,000 points.
At the end the runner's ``log_job`` sends the job's event with this ``live_id``, and the store
completes that same run (``store._apply_job``) instead of opening a second one; points the live
thread already delivered are not sent twice.

Live logging runs only where a job logs its own run (``mode() == "direct"``: a tracking server,
or ``REPROLM_MLFLOW_MODE=direct``); ``REPROLM_MLFLOW_LIVE=off`` turns it off. It can never
fail or block training: an unreachable server costs the thread a 2 s TCP probe, retried with
growing pauses (at most 60 s), and the job's final event (the whole curve) is spooled as
always. A job that fails marks its live run FAILED (``abandon``); a killed job leaves it
RUNNING.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import threading
import time
import uuid
from typing import Any

from reprolm.tracking.config import (
    ENV_INVOCATION,
    ENV_PARENT,
    artifact_location,
    connect,
    enabled,
    experiment_name,
    mode,
)
from reprolm.tracking.events import _key

ENV_LIVE = "REPROLM_MLFLOW_LIVE"
ENV_LIVE_INTERVAL = "REPROLM_MLFLOW_LIVE_INTERVAL"
LIVE_TAG = "reprolm.live_id"
DEFAULT_INTERVAL = 10.0
MAX_BACKOFF = 60.0
MAX_PENDING = 100_000  # points kept while the server is away (the final event has them all)
BATCH_METRICS = 1000
CLOSE_TIMEOUT = 10.0  # the most a job waits at its end for the last batch

_current: LiveMetrics | None = None


def live_enabled() -> bool:
    flag = os.environ.get(ENV_LIVE, "").strip().lower()
    return flag not in ("off", "0", "false", "no") and enabled() and mode() == "direct"


def interval() -> float:
    try:
        value = float(os.environ.get(ENV_LIVE_INTERVAL) or DEFAULT_INTERVAL)
    except ValueError:
        return DEFAULT_INTERVAL
    return value if math.isfinite(value) and value > 0 else DEFAULT_INTERVAL


def _note(message: str) -> None:
    print(f"reprolm mlflow live: {message}", file=sys.stderr, flush=True)


class LiveMetrics:
    """The buffer and the sender thread of one job's live run (see the module docstring)."""

    def __init__(self, stage: str, fingerprint: str, every: float | None = None) -> None:
        self.stage, self.fingerprint = stage, fingerprint
        self.live_id = uuid.uuid4().hex  # one per attempt: a retried job opens its own run
        self.every = every or interval()
        self.run_id: str | None = None
        self.sent = 0  # points delivered
        self.batches = 0
        self._pending: list[tuple[str, float, int, int]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._status: str | None = None
        self._client: Any = None
        self._retry_at = 0.0
        self._backoff = self.every
        self._warned = False
        self._thread = threading.Thread(target=self._loop, name="reprolm-live", daemon=True)
        self._thread.start()

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        """Queue one logging step's numbers as ``train/<key>`` (cheap: no I/O here)."""
        now = int(time.time() * 1000)
        rows = [
            (_key(f"train/{k}"), float(v), int(step), now)
            for k, v in sorted(metrics.items())
            if k != "step" and isinstance(v, int | float) and math.isfinite(v)
        ]
        with self._lock:
            self._pending.extend(rows)
            del self._pending[:-MAX_PENDING]

    def close(self, status: str | None = None, timeout: float = CLOSE_TIMEOUT) -> None:
        """Send what is left and stop; ``status`` (e.g. FAILED) ends the run, None leaves it for
        ``log_job`` to complete. Waits at most ``timeout`` seconds."""
        self._status = status
        self._stop.set()
        self._thread.join(timeout)

    # ------------------------------------------------------------------ the sender thread
    def _loop(self) -> None:
        while True:
            stopping = self._stop.wait(self.every)
            self._send(final=stopping)
            if stopping:
                break
        if self._status and self.run_id is not None:
            try:
                from reprolm.tracking.store import _terminate

                _terminate(self._client, self.run_id, self._status, int(time.time() * 1000))
            except Exception as error:  # tracking never fails the job
                self._warn(f"could not mark run {self.run_id} {self._status}: {error}")

    def _send(self, final: bool) -> None:
        with self._lock:
            points, self._pending = self._pending, []
        if not final and time.monotonic() < self._retry_at:
            self._requeue(points)
            return
        delivered = 0
        try:
            if self.run_id is None:
                self._open()
            from mlflow.entities import Metric

            for i in range(0, len(points), BATCH_METRICS):
                chunk = points[i : i + BATCH_METRICS]
                metrics = [Metric(key, value, ts, step) for key, value, step, ts in chunk]
                self._client.log_batch(self.run_id, metrics=metrics)
                delivered += len(chunk)
                self.batches += 1
            self._backoff = self.every
            self.sent += delivered
        except Exception as error:  # an outage: keep the points, try again later
            self._requeue(points[delivered:])
            self._retry_at = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, MAX_BACKOFF)
            self.sent += delivered
            self._warn(f"{type(error).__name__}: {error}; the job's metrics stay in its final "
                       "event (spooled if the server is still away)")  # fmt: skip

    def _requeue(self, points: list[tuple[str, float, int, int]]) -> None:
        with self._lock:
            self._pending[:0] = points
            del self._pending[:-MAX_PENDING]

    def _open(self) -> None:
        """Open the job's RUNNING child run under the workflow's parent run."""
        client = self._client or connect()  # a fast TCP probe first, then MLflow's import
        self._client = client
        from reprolm.tracking import store

        experiment = store.ensure_experiment(client, experiment_name(), artifact_location())
        now = int(time.time() * 1000)
        invocation = os.environ.get(ENV_INVOCATION, "")
        parent = store._parent(
            client,
            experiment,
            {"parent_run_id": os.environ.get(ENV_PARENT), "invocation": invocation,
             "start_time": now},
        )  # fmt: skip
        tags = {
            "reprolm.kind": "job",
            "reprolm.stage": self.stage,
            "reprolm.fingerprint": self.fingerprint,
            "reprolm.invocation": invocation,
            LIVE_TAG: self.live_id,
        }
        if parent:
            tags[store.PARENT_TAG] = parent
        run = client.create_run(
            experiment, start_time=now, tags=tags, run_name=f"{self.stage}:{self.fingerprint}"
        )
        self.run_id = run.info.run_id
        _note(f"run {self.run_id}: metrics every {self.every:g} s while {self.stage} trains")

    def _warn(self, message: str) -> None:
        if not self._warned:  # once per job: a log line per retry would drown the progress
            self._warned = True
            _note(message)


def start(stage: str, fingerprint: str) -> LiveMetrics | None:
    """This job's live metrics, or None where live logging is off (see ``live_enabled``)."""
    global _current
    try:
        if not live_enabled():
            return None
        _current = LiveMetrics(stage, fingerprint)
        return _current
    except Exception as error:  # tracking never fails the job
        _note(f"not started: {type(error).__name__}: {error}")
        return None


def take_id() -> str | None:
    """The ``live_id`` of this job's live run, for its final event (once: the next job run in
    this process starts without one)."""
    global _current
    live, _current = _current, None
    return live.live_id if live is not None else None


def abandon() -> None:
    """The job failed: stop sending and mark its live run FAILED (never raises)."""
    global _current
    live, _current = _current, None
    if live is not None:
        with contextlib.suppress(Exception):
            live.close("FAILED")
