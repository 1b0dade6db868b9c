"""The spool: events waiting for the tracking store, one JSON file each, in order of writing."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from reprolm.tracking.config import spool_dir


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
