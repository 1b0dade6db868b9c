"""Fingerprints: the identity of a job before it runs.

fingerprint = hash(stage, resolved stage config, fingerprints of its inputs). The same recipe
lands in the same place; any changed value lands in a new one, and old artifacts stay. Paths and
storage prefixes never enter it (canonical JSON refuses paths).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from reprolm.canonical import canonical_json

FINGERPRINT_LENGTH = 12


def fingerprint(stage: str, config: Mapping[str, Any], inputs: Mapping[str, str]) -> str:
    """First 12 hex characters of sha256 over the canonical JSON of the job's identity."""
    identity = {"stage": stage, "config": dict(config), "inputs": dict(inputs)}
    encoded = canonical_json(identity).encode("ascii")
    return hashlib.sha256(encoded).hexdigest()[:FINGERPRINT_LENGTH]
