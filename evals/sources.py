"""Data files of a spec: row reading (JSONL, Parquet, HF ``save_to_disk`` folders), content
digests, the bundled few-shot sets, sampling."""

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


HF_DISK_MARKERS = ("dataset_dict.json", "dataset_info.json", "state.json")


def is_hf_disk(path: Path) -> bool:
    """Whether ``path`` is a folder written by ``datasets``' ``save_to_disk``."""
    return path.is_dir() and any((path / name).is_file() for name in HF_DISK_MARKERS)


def read_rows(path: Path, split: str | None = None) -> list[dict]:
    """Rows of a dataset in any released form: a JSONL file, a Parquet file, or a HF
    ``save_to_disk`` folder (a ``Dataset``, or a ``DatasetDict`` read at ``split``).

    The error names the file and the fix; a ``DatasetDict`` without ``split`` lists its splits.
    """
    path = Path(path)
    if path.is_file() and path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    if path.is_file():
        return read_jsonl(path)
    if not is_hf_disk(path):
        raise ValueError(
            f"{path}: neither a JSONL or Parquet file nor a datasets save_to_disk folder "
            f"(no {' / '.join(HF_DISK_MARKERS)}); give the split's file or the saved folder"
        )
    from datasets import load_from_disk

    loaded = load_from_disk(str(path))
    if hasattr(loaded, "keys"):  # a DatasetDict
        if split not in loaded:
            raise ValueError(
                f"{path}: a DatasetDict with splits {sorted(loaded.keys())}; split {split!r} "
                "is not one of them (point the dataset at the split folder, or pick the split)"
            )
        loaded = loaded[split]
    return [dict(row) for row in loaded]


def bundled(name: str) -> Path:
    """A versioned data file shipped with the package (``evals/data/<name>``)."""
    path = DATA_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: bundled evaluation data file is missing")
    return path


def digest(path: Path) -> str:
    """blake3 of a file's bytes; of a folder (a ``save_to_disk`` dataset), the payload digest
    of its regular files (names and bytes, as artifacts are hashed)."""
    if Path(path).is_dir():
        from reprolm.hashing import hash_payload, payload_digest

        return payload_digest(hash_payload(Path(path)))
    return hash_file(path)


def sample_indices(n: int, *, threshold: int, size: int, seed: int) -> list[int]:
    """OLMES sampling: every index when ``n <= threshold``, else ``size`` indices drawn with a
    fixed seed, in ascending order (so instance order never depends on the draw)."""
    if n <= threshold:
        return list(range(n))
    return sorted(random.Random(seed).sample(range(n), size))
