"""JSONL reading with file:line errors, and writing in the artifact format."""

from __future__ import annotations

import itertools
import json
import pathlib
from collections.abc import Iterator


def iter_jsonl(path: pathlib.Path, required: tuple[str, ...] = (), skip: int = 0) -> Iterator[dict]:
    """Rows of a JSONL file, one at a time, after its first ``skip`` lines (not parsed); each
    must be an object holding the ``required`` keys; errors name ``file:line``."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; is the input artifact complete?")
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(itertools.islice(fh, skip, None), skip + 1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({err.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{lineno}: expected a JSON object per line")
            missing = [key for key in required if key not in row]
            if missing:
                raise ValueError(f"{path}:{lineno}: missing key(s) {missing}")
            yield row


def read_jsonl(path: pathlib.Path, required: tuple[str, ...] = ()) -> list[dict]:
    """Rows of a JSONL file (``iter_jsonl``, all at once)."""
    return list(iter_jsonl(path, required))


def write_jsonl(path: pathlib.Path, rows: list[dict]) -> None:
    """UTF-8, one sorted-key object per line, '\\n' line ends."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n")


def write_json(path: pathlib.Path, obj: object) -> None:
    """Indented, sorted-key JSON with a final newline."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, sort_keys=True, indent=2) + "\n", encoding="utf-8")
