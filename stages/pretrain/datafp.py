"""The content fingerprint of the data a pretraining run is given, checked when it resumes.

A resumed run must read the same tokens in the same order as the run that saved the
checkpoint, or the result is neither run. The fingerprint is blake3 over, for every file the
run reads (``shards/index.json``, each shard it lists and the order file), its path, its size
and its blake3 content hash. OLMo-core checks names and sizes only.

Cost: with the tokenize input's provenance manifest (every job under the runner) the hashes are
the manifest's ``files`` entries and only sizes are re-checked on disk (one ``stat`` per
file), so a same-size edit made after the artifact was installed is not seen here
(``reprolm audit`` re-hashes payloads). Without a manifest (a test's hand-built input) every
file is hashed, reading the whole corpus once (about 0.35 s per GiB).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reprolm.hashing import hash_bytes, hash_file
from stages.common.job import Input
from stages.common.training import TrainingInputError


def data_files(index: dict[str, Any]) -> list[str]:
    """Payload paths of what pretraining reads: the index, the shards and the order file."""
    order = [index["order"]["path"]] if index.get("order") else []
    return ["shards/index.json", *(entry["path"] for entry in index["files"]), *order]


def data_fingerprint(tokenize: Input, index: dict[str, Any]) -> str:
    """Hex blake3 of (path, size, hash) of every file in ``data_files``; sizes on disk must
    match the manifest's."""
    recorded = tokenize.manifest.get("files") or {}
    lines = []
    for rel in data_files(index):
        path: Path = tokenize.path / rel
        size = path.stat().st_size
        if recorded:
            entry = recorded.get(rel)
            if entry is None or int(entry["size"]) != size:
                want = "absent" if entry is None else f"{entry['size']} bytes"
                raise TrainingInputError(
                    f"{path}: {size} bytes on disk, the tokenize artifact's manifest says {want}; "
                    "the artifact was changed after it was made: rebuild it"
                )
            digest = entry["hash"]
        else:
            digest = hash_file(path)
        lines.append(f"{rel}\0{size}\0{digest}\n")
    return hash_bytes("".join(lines).encode("utf-8"))
