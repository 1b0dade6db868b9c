"""Provenance manifests: ``provenance.json`` beside every payload, the source of truth.

A manifest is readable without the framework (plain JSON). Its ``fingerprint`` names the job,
its ``digest`` names what the job produced; ``files`` lets anyone re-hash the payload.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reprolm.canonical import read_json
from reprolm.hashing import DIGEST_ALGORITHM, MANIFEST_NAME, hash_payload, payload_digest

SCHEMA_VERSION = 1
REQUIRED_FIELDS = ("stage", "fingerprint", "digest", "files")


class ManifestError(ValueError):
    """A manifest is missing or malformed (the message names the file)."""


def read_manifest(artifact_dir: Path) -> dict[str, Any]:
    """Load ``<artifact_dir>/provenance.json``; errors say which artifact and what to do."""
    path = Path(artifact_dir) / MANIFEST_NAME
    missing = f"{path}: no manifest; {artifact_dir} is not a finished artifact (run its job first)"
    return load_manifest(path, missing=missing)


def load_manifest(
    path: Path, required: tuple[str, ...] = REQUIRED_FIELDS, *, missing: str | None = None
) -> dict[str, Any]:
    """Parse one manifest file (``provenance.json`` or a release's ``lineage/`` copy).

    Raises ManifestError when the file is absent (``missing`` is the message), is not JSON, or
    lacks one of the ``required`` fields.
    """
    try:
        manifest = read_json(path)
    except FileNotFoundError:
        raise ManifestError(missing or f"{path}: no manifest") from None
    except json.JSONDecodeError as error:
        raise ManifestError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from None
    for key in required:
        if not isinstance(manifest, dict) or key not in manifest:
            raise ManifestError(f"{path}: manifest lacks the {key!r} field")
    return manifest


def compare_payload(recorded: dict[str, Any], actual: dict[str, Any]) -> list[tuple[str, str]]:
    """``(kind, relpath)`` per difference: missing, unexpected, size changed, changed."""
    problems = [("missing", rel) for rel in sorted(set(recorded) - set(actual))]
    problems += [("unexpected", rel) for rel in sorted(set(actual) - set(recorded))]
    for rel in sorted(set(recorded) & set(actual)):
        size = recorded[rel].get("size")
        if size is not None and size != actual[rel]["size"]:
            problems.append(("size changed", rel))
        elif recorded[rel]["hash"] != actual[rel]["hash"]:
            problems.append(("changed", rel))
    return problems


def verify_payload(
    artifact_dir: Path,
    manifest: dict[str, Any] | None = None,
    actual: dict[str, Any] | None = None,
) -> list[str]:
    """Re-hash a payload against its manifest; return one line per difference (empty = intact).

    Raises ``reprolm.hashing.PayloadError`` when the payload holds a symlink (file or
    directory) or anything else that is not a regular file inside the artifact. ``actual``:
    the payload's ``hash_payload`` when the caller already has it.
    """
    manifest = manifest or read_manifest(artifact_dir)
    recorded: dict[str, Any] = manifest["files"]
    actual = actual if actual is not None else hash_payload(Path(artifact_dir))
    problems = []
    for kind, rel in compare_payload(recorded, actual):
        detail = ""
        if kind == "size changed":
            detail = f" (recorded {recorded[rel]['size']} bytes, {actual[rel]['size']} on disk)"
        problems.append(f"{kind}: {rel}{detail}")
    if not problems and payload_digest(actual) != manifest["digest"]:
        problems.append("digest does not match the recorded file hashes")
    return problems


def build_manifest(
    *,
    stage: str,
    label: str,
    fingerprint: str,
    config: dict[str, Any],
    inputs: dict[str, dict[str, str]],
    payload_dir: Path,
    code: dict[str, Any],
    environment: dict[str, Any],
    execution: dict[str, Any],
    reproducibility: dict[str, Any],
    metrics: dict[str, Any],
) -> dict[str, Any]:
    """Hash the payload and assemble the manifest (not yet written)."""
    files = hash_payload(payload_dir)
    return {
        "schema_version": SCHEMA_VERSION,
        "stage": stage,
        "label": label,
        "fingerprint": fingerprint,
        "digest": payload_digest(files),
        "digest_algorithm": DIGEST_ALGORITHM,
        "files": files,
        "config": config,
        "inputs": inputs,
        "code": code,
        "environment": environment,
        "execution": execution,
        "reproducibility": reproducibility,
        "metrics": metrics,
    }
