"""Replay of the spool into the tracking store (``reprolm mlflow sync``, the workflow's end)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reprolm.tracking.config import artifact_location, connect, is_connection_error, spool_dir


def sync(where: Path | None = None, spool_path: Path | None = None) -> dict[str, Any]:
    """Replay spooled events in order; remove each one applied. Stops at the first outage."""
    directory = Path(spool_path) if spool_path else spool_dir(where)
    files = sorted(directory.glob("*.json")) if directory.is_dir() else []
    result: dict[str, Any] = {"replayed": [], "failed": [], "remaining": 0, "reachable": True}
    if not files:
        return result
    try:
        client = connect()
    except Exception as error:
        result.update(reachable=False, remaining=len(files), error=str(error))
        return result
    from reprolm.tracking import store

    for index, path in enumerate(files):
        try:
            event = json.loads(path.read_text(encoding="utf-8"))
            run_id = store.apply_event(client, event, artifact_location(where))
        except Exception as error:
            if is_connection_error(error):
                result.update(reachable=False, remaining=len(files) - index, error=str(error))
                return result
            failure = f"{type(error).__name__}: {error}"
            result["failed"].append({"file": str(path), "error": failure})
            continue
        result["replayed"].append({"file": path.name, "run_id": run_id})
        path.unlink()
    result["remaining"] = len(result["failed"])
    return result
