"""JSON for the platform: the canonical encoding that fingerprints and digests hash, the
human-readable one of payload and manifest files (``dump_json``), and reading a JSON file.

Marin's lesson: an encoder that silently stringifies what it cannot represent (a callable, an
object whose repr is a memory address) makes hashes that change between runs. This one refuses.
"""

from __future__ import annotations

import json
import math
from pathlib import Path, PurePath
from typing import Any


class NotCanonicalError(TypeError):
    """A value has no canonical JSON form (the message names where it sits)."""


def _check(value: Any, where: str) -> None:
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NotCanonicalError(f"{where}: {value!r} is not a finite number")
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check(item, f"{where}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise NotCanonicalError(f"{where}: key {key!r} is not a string")
            _check(item, f"{where}.{key}" if where else key)
        return
    if isinstance(value, PurePath):
        raise NotCanonicalError(
            f"{where}: paths never enter a fingerprint (storage locations must not change "
            "identity); pass the input's fingerprint instead"
        )
    raise NotCanonicalError(f"{where}: {type(value).__name__} {value!r} has no canonical JSON form")


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, ASCII only; raises NotCanonicalError on anything else."""
    _check(value, "")
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def dump_json(value: Any) -> str:
    """Human-readable but deterministic JSON for payload and manifest files."""
    return json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def read_json(path: Path) -> Any:
    """A JSON file's value (UTF-8); raises OSError or ``json.JSONDecodeError``."""
    return json.loads(Path(path).read_text(encoding="utf-8"))
