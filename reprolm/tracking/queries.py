"""What the tracking store says: one run and whether it vouches for an artifact (for
``reprolm audit``), and the latest invocation."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reprolm.tracking.config import connect, experiment_name, is_connection_error, tracking_uri
from reprolm.tracking.events import CLIENT_ID_PREFIX
from reprolm.tracking.spool import spooled

ENDED_MARGIN_MS = 2000


def run_status(run_id: str, where: Path | None = None) -> dict[str, Any]:
    """What the tracking store says about a manifest's ``mlflow_run_id`` (for ``audit``).

    ``{"exists", "run_id", "fingerprint", "digest", "stage", "status", "spooled",
    "reachable", "error", "store", "experiment", "experiment_created"}``; ``event:<id>`` ids
    are resolved through their tag. ``store``: why there is no store to ask
    (``unavailable_store``), else None; ``experiment``: whether the store holds the experiment
    and ``experiment_created`` when it was created (ms since the epoch), asked only when the run
    is absent.
    """
    result: dict[str, Any] = {
        "exists": False, "run_id": run_id, "fingerprint": None, "digest": None, "stage": None,
        "status": None, "spooled": False, "reachable": True, "error": None, "store": None,
        "experiment": None, "experiment_created": None,
    }  # fmt: skip
    try:
        if run_id.startswith(CLIENT_ID_PREFIX):
            eid = run_id[len(CLIENT_ID_PREFIX) :]
            result["spooled"] = any(eid in p.name for p in spooled(where))
        result["store"] = unavailable_store(tracking_uri(where))
        if result["store"]:
            return result  # asking would create the store
        client = connect(tracking_uri(where))
        from reprolm.tracking import store

        run = store.find_run(client, run_id, experiment_name())
        if run is None:
            experiment = client.get_experiment_by_name(experiment_name())
            result["experiment"] = experiment is not None
            result["experiment_created"] = getattr(experiment, "creation_time", None)
        else:
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
        result["reachable"] = not is_connection_error(error)
        result["error"] = f"{type(error).__name__}: {error}"
    return result


def latest_runs(where: Path | None = None) -> dict[str, Any]:
    """The newest workflow invocation's parent run and its child runs (for ``mlflow runs``)."""
    client = connect(tracking_uri(where))
    from reprolm.tracking import store

    return store.latest_invocation(client, experiment_name())


def sqlite_store(uri: str) -> Path | None:
    """The embedded SQLite store's file for a ``sqlite:///`` URI (None for any other store)."""
    return Path(uri[len("sqlite:///") :]) if uri.startswith("sqlite:///") else None


def unavailable_store(uri: str) -> str | None:
    """Why an embedded SQLite store cannot be asked without creating it (absent, empty, not an
    MLflow store), read-only; None when it can be asked, or for any other kind of store."""
    path = sqlite_store(uri)
    if path is None:
        return None
    if not path.is_file():
        return f"no tracking store at {path}"
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    except sqlite3.Error as error:
        return f"tracking store {path} cannot be read: {error}"
    if "experiments" not in tables:
        return f"tracking store {path} is empty (no MLflow tables)"
    return None


def judge_run(manifest: dict[str, Any], status: dict[str, Any]) -> tuple[bool | None, str]:
    """``run_status``'s record as (the run vouches for this manifest?, detail).

    None: not checkable here (spooled; store unreachable, absent or empty; the store holds no
    experiment of that name, or created it after the job ended: the run was tracked in another
    store, as in a fresh clone that ran the workflow); False: the store held the experiment when
    the job ran but not the run, or a tag names another artifact.
    """
    run_id = status.get("run_id") or manifest.get("mlflow_run_id")
    if not status.get("exists"):
        if status.get("spooled"):
            return None, f"run {run_id} is spooled, not yet synced (reprolm mlflow sync)"
        if status.get("reachable") is False:
            return None, f"tracking store unreachable: {status.get('error')}"
        if status.get("store"):
            return None, str(status["store"])
        if status.get("experiment") is False:
            return None, (
                f"the tracking store has no experiment {experiment_name()!r} "
                "(the runs were tracked in another store)"
            )
        if (predates := _predates(manifest, status.get("experiment_created"))) is not None:
            return None, predates
        if status.get("error"):
            return False, f"run {run_id}: {status['error']}"
        return False, f"run {run_id} not found in the tracking store"
    for key in ("fingerprint", "digest", "stage"):
        if status.get(key) is not None and status[key] != manifest.get(key):
            return False, (
                f"run {run_id} tag {key} {_short(status[key])} != manifest {key} "
                f"{_short(manifest.get(key))}"
            )
    return True, f"run {run_id} ({status.get('status')})"


def _predates(manifest: dict[str, Any], created_ms: Any) -> str | None:
    """Why the store cannot have tracked this job: its experiment was created after the job
    ended (manifest times have whole seconds: a 2 s margin); None when it could have."""
    ended = (manifest.get("execution") or {}).get("ended")
    try:
        ended_ms = datetime.fromisoformat(str(ended)).timestamp() * 1000
        created = float(created_ms)
    except (TypeError, ValueError):
        return None
    if ended_ms + ENDED_MARGIN_MS >= created:
        return None
    made = datetime.fromtimestamp(created / 1000, UTC).isoformat(timespec="seconds")
    return (
        f"the tracking store's experiment {experiment_name()!r} was created at {made}, after "
        "the job ended: its run was tracked in another store"
    )


def _short(digest: Any) -> str:
    return str(digest)[:16] if digest else str(digest)
