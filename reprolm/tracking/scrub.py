"""Secret scrubbing: no value of a secret-looking environment variable leaves the process."""

from __future__ import annotations

import os
import re
from typing import Any

# Names of environment variables whose values must never leave the process.
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|API_?KEY|ACCESS_?KEY|PRIVATE|CREDENTIAL|AUTH", re.I)


def _secret_values() -> list[str]:
    """Values of secret-looking environment variables (long enough to be worth matching)."""
    values = {v for k, v in os.environ.items() if SECRET_NAME.search(k) and len(v) >= 6}
    return sorted(values, key=len, reverse=True)


def scrub(value: Any, secrets: list[str] | None = None) -> Any:
    """Replace any secret environment value inside strings (defence behind the allow-lists)."""
    secrets = _secret_values() if secrets is None else secrets
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, "[redacted]")
        return value
    if isinstance(value, dict):
        return {scrub(k, secrets): scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v, secrets) for v in value]
    return value
