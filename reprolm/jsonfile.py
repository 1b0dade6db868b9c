"""Reading a JSON file that may come from elsewhere: bounded in size and nesting, strict UTF-8,
no duplicate keys, every failure a JSONFileError naming the file.

Kept apart from ``reprolm.canonical``: that module decides payload bytes and is part of every
stage's code digest (``reprolm.codedigest``), so a change to this reader must not rerun jobs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class JSONFileError(ValueError):
    """A JSON file cannot be read within the bounds (the message names the file and why)."""


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Duplicate keys are ambiguous (parsers disagree on which wins): refuse them."""
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise JSONFileError(f"key {twice!r} appears twice in one object")
    return value


def nesting_depth(value: Any) -> int:
    """How deeply lists and objects nest in ``value`` (iterative: no recursion limit)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def read_json(path: Path, *, max_bytes: int | None = None, max_depth: int | None = None) -> Any:
    """A JSON file's value (strict UTF-8, no duplicate keys), within the given bounds.

    Raises FileNotFoundError when absent, JSONFileError (naming ``path``) for anything else:
    unreadable, larger than ``max_bytes``, not UTF-8, not JSON, nested deeper than ``max_depth``.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read() if max_bytes is None else handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise
    except OSError as error:
        raise JSONFileError(f"{path}: cannot be read ({error.strerror or error})") from None
    if max_bytes is not None and len(data) > max_bytes:
        raise JSONFileError(f"{path}: larger than {max_bytes} bytes, the limit for this file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise JSONFileError(
            f"{path}: not UTF-8 (byte {data[error.start]:#04x} at offset {error.start})"
        ) from None
    try:
        value = json.loads(text, object_pairs_hook=_refuse_duplicates)
    except json.JSONDecodeError as error:
        raise JSONFileError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from None
    except RecursionError:
        raise JSONFileError(f"{path}: nested too deeply to parse") from None
    except JSONFileError as error:
        raise JSONFileError(f"{path}: {error}") from None
    except ValueError as error:  # e.g. an integer beyond Python's digit limit
        raise JSONFileError(f"{path}: not valid JSON ({error})") from None
    if max_depth is not None and nesting_depth(value) > max_depth:
        raise JSONFileError(f"{path}: nested deeper than {max_depth} levels, the limit")
    return value
