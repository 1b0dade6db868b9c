"""The shape a manifest must have before anything reads it: field types, identifier formats and
paths that cannot leave the artifact.

A manifest may come from elsewhere (a DVC remote, a release bundle, a colleague's tree), so
every field that later becomes a path, a glob, a git argument or a code lookup is checked here:
``stage`` is a known stage, ``label`` one safe path component, ``fingerprint`` and ``digest``
hex of their lengths, ``files`` relative paths inside the artifact, ``code.commit`` and
``code.diff_hash`` hex. Optional fields are checked when present. Explicit code rather than a
JSON schema, so each error names its field path (``files["a/../b"]``, ``inputs.model.digest``).
"""

from __future__ import annotations

import re
from typing import Any

from reprolm.fingerprint import FINGERPRINT_LENGTH
from reprolm.hashing import MANIFEST_NAME
from reprolm.stagetable import STAGE_NAMES

DIGEST_LENGTH = 64  # hex blake3 (reprolm.hashing)
_FINGERPRINT = re.compile(f"[0-9a-f]{{{FINGERPRINT_LENGTH}}}")
_DIGEST = re.compile(f"[0-9a-f]{{{DIGEST_LENGTH}}}")
_COMMIT = re.compile(r"[0-9A-Za-z][0-9A-Za-z._-]{0,99}")  # never an option (no leading "-")
_LABEL = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:/+-]{0,127}")  # an input name (a mapping key)
MAPPINGS = ("config", "code", "environment", "execution", "reproducibility", "metrics")


def _type(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _hex(where: str, value: Any, pattern: re.Pattern[str], what: str) -> list[str]:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        return [f"{where}: {_show(value)} is not {what}"]
    return []


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else _type(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _stage(where: str, value: Any) -> list[str]:
    if value not in STAGE_NAMES or not isinstance(value, str):
        return [f"{where}: {_show(value)} is not a known stage (one of {', '.join(STAGE_NAMES)})"]
    return []


def relpath_problem(rel: str) -> str | None:
    """Why ``rel`` is not a payload path that stays inside its artifact (None: it is)."""
    if not rel or rel.startswith("/") or "\\" in rel or "\0" in rel:
        return "not a relative POSIX path"
    parts = rel.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "has an empty, '.' or '..' segment (it would leave the artifact)"
    if rel == MANIFEST_NAME:
        return "is the manifest itself, never a payload file"
    return None


def _files(value: Any) -> list[str]:
    if not isinstance(value, dict):
        return [f"files: a mapping relpath -> {{hash, size}} expected, got {_type(value)}"]
    problems = []
    for rel, entry in value.items():
        where = f"files[{rel[:80]!r}]"
        if (why := relpath_problem(rel)) is not None:
            problems.append(f"{where}: {why}")
        if not isinstance(entry, dict):
            problems.append(f"{where}: a mapping {{hash, size}} expected, got {_type(entry)}")
            continue
        problems += _hex(f"{where}.hash", entry.get("hash"), _DIGEST, f"{DIGEST_LENGTH} hex digits")
        size = entry.get("size")
        if size is not None and (type(size) is not int or size < 0):
            problems.append(f"{where}.size: {_show(size)} is not a byte count")
    return problems


def _inputs(value: Any) -> list[str]:
    if not isinstance(value, dict):
        return [f"inputs: a mapping name -> {{fingerprint, digest, path}} expected, got "
                f"{_type(value)}"]  # fmt: skip
    problems = []
    for name, record in value.items():
        where = f"inputs.{name[:80]}"
        if not _NAME.fullmatch(name):
            problems.append(f"inputs: {name[:80]!r} is not an input name")
        if not isinstance(record, dict):
            problems.append(f"{where}: a mapping {{fingerprint, digest, path}} expected, got "
                            f"{_type(record)}")  # fmt: skip
            continue
        if "fingerprint" in record:
            problems += _hex(f"{where}.fingerprint", record["fingerprint"], _FINGERPRINT,
                             f"{FINGERPRINT_LENGTH} hex digits")  # fmt: skip
        if "digest" in record:
            problems += _hex(f"{where}.digest", record["digest"], _DIGEST,
                             f"{DIGEST_LENGTH} hex digits")  # fmt: skip
        if "stage" in record:
            problems += _stage(f"{where}.stage", record["stage"])
        path = record.get("path")
        if "path" in record and (not isinstance(path, str) or not path or "\0" in path):
            problems.append(f"{where}.path: {_show(path)} is not a path")
    return problems


def _code(value: dict[str, Any]) -> list[str]:
    problems = []
    if value.get("commit") is not None:
        problems += _hex("code.commit", value["commit"], _COMMIT, "a git commit")
    if value.get("diff_hash") is not None:
        problems += _hex("code.diff_hash", value["diff_hash"], _DIGEST,
                         f"{DIGEST_LENGTH} hex digits")  # fmt: skip
    for key in ("code_digest", "code_scope"):
        if value.get(key) is not None and not isinstance(value[key], str):
            problems.append(f"code.{key}: a string expected, got {_type(value[key])}")
    if value.get("source_hashes") is not None and not isinstance(value["source_hashes"], dict):
        problems.append(
            f"code.source_hashes: a mapping expected, got {_type(value['source_hashes'])}"
        )
    return problems


def manifest_problems(manifest: Any, required: tuple[str, ...]) -> list[str]:
    """Every way ``manifest`` departs from the manifest shape, one line per field path."""
    if not isinstance(manifest, dict):
        return [f"a JSON object expected, got {_type(manifest)}"]
    problems = [f"{key}: the field is missing" for key in required if key not in manifest]
    if "stage" in manifest:
        problems += _stage("stage", manifest["stage"])
    if manifest.get("label") is not None:
        label = manifest["label"]
        if not isinstance(label, str) or not _LABEL.fullmatch(label) or set(label) == {"."}:
            problems.append(f"label: {_show(label)} is not one safe path component")
    if "fingerprint" in manifest:
        problems += _hex("fingerprint", manifest["fingerprint"], _FINGERPRINT,
                         f"{FINGERPRINT_LENGTH} hex digits")  # fmt: skip
    if "digest" in manifest:
        problems += _hex("digest", manifest["digest"], _DIGEST, f"{DIGEST_LENGTH} hex digits")
    if "files" in manifest:
        problems += _files(manifest["files"])
    if manifest.get("inputs") is not None:
        problems += _inputs(manifest["inputs"])
    for key in MAPPINGS:
        if manifest.get(key) is not None and not isinstance(manifest[key], dict):
            problems.append(f"{key}: a mapping expected, got {_type(manifest[key])}")
    if isinstance(manifest.get("code"), dict):
        problems += _code(manifest["code"])
    environment = manifest.get("environment")
    for key in ("accelerators", "container_image") if isinstance(environment, dict) else ():
        if environment.get(key) is not None and not isinstance(environment[key], dict):
            problems.append(f"environment.{key}: a mapping expected, got {_type(environment[key])}")
    for key in ("digest_algorithm", "mlflow_run_id"):
        if manifest.get(key) is not None and not isinstance(manifest[key], str):
            problems.append(f"{key}: a string expected, got {_type(manifest[key])}")
    return problems
