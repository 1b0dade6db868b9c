"""Content hashes of files and artifact payloads.

blake3 is the digest algorithm: on this class of machine it hashed 1 GiB in 0.35 s against
0.75 s for sha256 and 2.1 s for md5 (see docs/provenance.md). The algorithm name is recorded
next to every hash so a later change of algorithm never makes old manifests ambiguous.
"""

from __future__ import annotations

import os
from pathlib import Path

import blake3

DIGEST_ALGORITHM = "blake3"
MANIFEST_NAME = "provenance.json"
_CHUNK = 1 << 22


def hash_bytes(data: bytes) -> str:
    """Hex blake3 of a byte string."""
    return blake3.blake3(data).hexdigest()


def hash_file(path: Path) -> str:
    """Hex blake3 of a file's content, read in 4 MiB chunks."""
    hasher = blake3.blake3()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


class PayloadError(ValueError):
    """A payload cannot be listed as plain files (the message names the path and the fix)."""


def _refuse(path: Path, what: str) -> PayloadError:
    return PayloadError(
        f"{path}: {what}; a payload must carry its own bytes as regular files inside the "
        "artifact directory (replace it with a copy of what it points to, or rerun the job)"
    )


def payload_files(artifact_dir: Path) -> list[str]:
    """Sorted POSIX relative paths of every payload file (everything but the manifest).

    Refused (PayloadError): symlinked files or directories, anything that is not a regular
    file, and anything resolving outside the artifact directory.
    """
    top = Path(artifact_dir).resolve()
    files: list[str] = []
    for root, dirs, names in os.walk(artifact_dir):
        for name in dirs:
            if Path(root, name).is_symlink():
                raise _refuse(Path(root, name), "a symlinked directory in a payload")
        dirs.sort()
        for name in names:
            path = Path(root, name)
            rel = path.relative_to(artifact_dir).as_posix()
            if rel == MANIFEST_NAME:
                continue
            if path.is_symlink():
                raise _refuse(path, "a payload file may not be a symlink")
            if not path.is_file():
                raise _refuse(path, "not a regular file")
            if not path.resolve().is_relative_to(top):
                raise _refuse(path, "resolves outside the artifact directory")
            files.append(rel)
    return sorted(files)


def hash_payload(artifact_dir: Path) -> dict[str, dict[str, int | str]]:
    """Per-file ``{relpath: {"hash", "size"}}`` for the payload of an artifact directory."""
    return {
        rel: {"hash": hash_file(artifact_dir / rel), "size": (artifact_dir / rel).stat().st_size}
        for rel in payload_files(artifact_dir)
    }


def payload_digest(files: dict[str, dict[str, int | str]]) -> str:
    """Digest of a payload: hash over the sorted (relative path, file hash) pairs."""
    lines = "".join(f"{rel}\0{files[rel]['hash']}\n" for rel in sorted(files))
    return hash_bytes(lines.encode("utf-8"))
