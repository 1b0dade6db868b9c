"""Free space on the disk of a path, for messages about full disks (jobs, DVC remotes)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def human_bytes(count: int) -> str:
    """``1.5 GiB``: a size in binary units."""
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def existing_ancestor(path: Path) -> Path:
    """``path`` or its nearest parent that exists."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def free_space(path: Path) -> str:
    """``"12.0 MiB free"`` on the file system holding ``path`` (its nearest existing parent)."""
    try:
        return f"{human_bytes(shutil.disk_usage(existing_ancestor(path)).free)} free"
    except OSError:
        return "free space unknown"
