"""The raw bytes behind a source artifact: its ``source.json`` names every file a `sources`
entry resolved to, with size and blake3 (stages/source). Audit re-reads them, so a lineage is
checked down to the corpus files themselves, not only to the record of them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from reprolm.hashing import hash_file, hash_payload, payload_digest


@dataclass
class RawCheck:
    """Per source artifact: files that differ, files not on this machine, bytes re-read."""

    problems: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    files: int = 0
    bytes_hashed: int = 0


def check_raw_files(artifact_dir: Path) -> RawCheck:
    """Re-hash every file ``source.json`` lists (an hf_disk directory as a payload)."""
    record = json.loads((artifact_dir / "source.json").read_text(encoding="utf-8"))
    result = RawCheck()
    for entry in record["files"]:
        path = Path(entry["path"])
        if not path.exists():
            result.missing.append(f"raw data not on this machine: {path}")
            continue
        digest = payload_digest(hash_payload(path)) if path.is_dir() else hash_file(path)
        size = (
            sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
            if path.is_dir()
            else path.stat().st_size
        )
        result.files += 1
        result.bytes_hashed += size
        if digest != entry["blake3"]:
            result.problems.append(
                f"raw file {path} changed since its source job hashed it (blake3 "
                f"{entry['blake3'][:12]} -> {digest[:12]}); restore it, or rerun the source job "
                "and everything after it"
            )
    return result
