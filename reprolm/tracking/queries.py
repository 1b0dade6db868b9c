"""What the tracking store says: one run and whether it vouches for an artifact (for
``reprolm audit``), and the latest invocation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reprolm.tracking.config import connect, experiment_name, is_connection_error, tracking_uri
from reprolm.tracking.events import CLIENT_ID_PREFIX
from reprolm.tracking.spool import spooled


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
        client = connect(tracking_uri(where))
        from reprolm.tracking import store

        run = store.find_run(client, run_id, experiment_name())
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


def judge_run(manifest: dict[str, Any], status: dict[str, Any]) -> tuple[bool | None, str]:
    """``run_status``'s record as (the run vouches for this manifest?, detail).

    None: nothing to check yet (spooled, store unreachable); False: the run is missing or a tag
    names another artifact.
    """
    run_id = status.get("run_id") or manifest.get("mlflow_run_id")
    if not status.get("exists"):
        if status.get("spooled"):
            return None, f"run {run_id} is spooled, not yet synced (reprolm mlflow sync)"
        if status.get("reachable") is False:
            return None, f"tracking store unreachable: {status.get('error')}"
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


def _short(digest: Any) -> str:
    return str(digest)[:16] if digest else str(digest)
