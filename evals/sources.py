"""Data files of a spec: JSONL reading, content digests, the bundled few-shot sets, sampling."""

from __future__ import annotations

import json
import random
from pathlib import Path

from reprolm.hashing import hash_file

DATA_DIR = Path(__file__).parent / "data"


def read_jsonl(path: Path) -> list[dict]:
    """Rows of a JSONL file; a bad line is reported with its file and line number."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not JSON ({error.msg})") from None
    return rows


def bundled(name: str) -> Path:
    """A versioned data file shipped with the package (``evals/data/<name>``)."""
    path = DATA_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: bundled evaluation data file is missing")
    return path


def digest(path: Path) -> str:
    """blake3 of a file's bytes."""
    return hash_file(path)


def sample_indices(n: int, *, threshold: int, size: int, seed: int) -> list[int]:
    """OLMES sampling: every index when ``n <= threshold``, else ``size`` indices drawn with a
    fixed seed, in ascending order (so instance order never depends on the draw)."""
    if n <= threshold:
        return list(range(n))
    return sorted(random.Random(seed).sample(range(n), size))
