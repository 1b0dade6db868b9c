"""Secret scrubbing: no value of a secret-looking environment variable, and no URL password,
leaves the process (the patterns live in ``reprolm.scrubbing``, shared with saved diffs)."""

from __future__ import annotations

from typing import Any

from reprolm.scrubbing import SECRET_NAME, scrub_values, secret_values

__all__ = ["SECRET_NAME", "scrub"]


def scrub(value: Any, secrets: list[str] | None = None) -> Any:
    """Replace any secret environment value or URL password inside strings (defence behind
    the allow-lists)."""
    secrets = secret_values() if secrets is None else secrets
    if isinstance(value, str):
        return scrub_values(value, secrets)[0]
    if isinstance(value, dict):
        return {scrub(k, secrets): scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v, secrets) for v in value]
    return value
