"""Provenance manifests: ``provenance.json`` beside every payload, the source of truth.

A manifest is readable without the framework (plain JSON). Its ``fingerprint`` names the job,
its ``digest`` names what the job produced; ``files`` lets anyone re-hash the payload.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reprolm.hashing import DIGEST_ALGORITHM, MANIFEST_NAME, hash_payload, payload_digest
from reprolm.jsonfile import JSONFileError, read_json
from reprolm.manifest_schema import manifest_problems

SCHEMA_VERSION = 1
REQUIRED_FIELDS = ("stage", "fingerprint", "digest", "files")
# A manifest lists ~100 bytes per payload file: a 10,000-shard artifact's is ~1.5 MB. 64 MiB is
# 40x that, yet bounds what one hostile file can make a reader allocate (JSON parsing takes
# several times the file's size in memory).
MAX_MANIFEST_BYTES = 64 << 20
# Real manifests nest 6-7 levels (config blocks, environment.numerics); 64 leaves room for deep
# recipe configs and keeps every recursive reader (canonical JSON, fingerprints) far from
# Python's recursion limit.
MAX_MANIFEST_DEPTH = 64


class ManifestError(ValueError):
    """A manifest is missing or malformed (the message names the file)."""


def read_manifest(
    artifact_dir: Path, required: tuple[str, ...] = REQUIRED_FIELDS
) -> dict[str, Any]:
    """Load ``<artifact_dir>/provenance.json``; errors say which artifact and what to do."""
    path = Path(artifact_dir) / MANIFEST_NAME
    missing = f"{path}: no manifest; {artifact_dir} is not a finished artifact (run its job first)"
    return load_manifest(path, required, missing=missing)


def load_manifest(
    path: Path, required: tuple[str, ...] = REQUIRED_FIELDS, *, missing: str | None = None
) -> dict[str, Any]:
    """Parse one manifest file (``provenance.json`` or a release's ``lineage/`` copy).

    Raises ManifestError naming the file when it is absent (``missing`` is the message),
    unreadable, over ``MAX_MANIFEST_BYTES``, not UTF-8 JSON, nested deeper than
    ``MAX_MANIFEST_DEPTH``, lacks one of the ``required`` fields, or breaks the manifest shape
    (``reprolm.manifest_schema``: every problem named by its field path).
    """
    try:
        manifest = read_json(path, max_bytes=MAX_MANIFEST_BYTES, max_depth=MAX_MANIFEST_DEPTH)
    except FileNotFoundError:
        raise ManifestError(missing or f"{path}: no manifest") from None
    except JSONFileError as error:
        raise ManifestError(str(error)) from None
    problems = manifest_problems(manifest, required)
    if problems:
        shown = "; ".join(problems[:5]) + (
            f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        )
        raise ManifestError(f"{path}: not a valid manifest: {shown}")
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
