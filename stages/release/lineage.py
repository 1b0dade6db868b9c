"""The bill of materials: every provenance manifest reachable from the release's inputs.

A manifest's ``inputs`` maps an input name to ``{"path", "fingerprint", "digest", ...}``, where
``path`` is the upstream artifact directory relative to the working directory the job ran in
(the repository root under Snakemake). The walk follows those links breadth-first.

What is written is each manifest less its record of one particular run (start/end times, argv,
host, CPU, git commit and diff, MLflow run id, storage paths): those differ between two builds
of the same artifact, and keeping them would make the release's own payload differ between two
rebuilds of the pipeline.
Identity and content (fingerprint, digest, per-file hashes, config, input fingerprints and
digests, code digest, package versions, metrics) are kept whole.
"""

from __future__ import annotations

import json
import os
import pathlib
from collections import deque
from collections.abc import Sequence

from reprolm.canonical import dump_json

MANIFEST = "provenance.json"


# What the written copies keep (see the module docstring). Allow-lists, not deny-lists: a field
# added to manifests later (say, a run id) stays out until someone decides it identifies content.
KEEP_TOP = (
    "schema_version", "stage", "label", "fingerprint", "digest", "digest_algorithm", "files",
    "config", "inputs", "code", "environment", "reproducibility", "metrics",
)  # fmt: skip
KEEP_ENVIRONMENT = ("python", "packages")
KEEP_CODE = ("code_digest", "source_files", "platform_digest")
KEEP_INPUT = ("stage", "fingerprint", "digest")


class LineageError(ValueError):
    """A manifest link is broken (the message names the manifest, the input and the fix)."""


def _read(path: pathlib.Path) -> dict:
    try:
        manifest = json.loads(path.read_bytes())
    except json.JSONDecodeError as error:
        raise LineageError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from None
    for key in ("stage", "fingerprint"):
        if key not in manifest:
            raise LineageError(f"{path}: manifest lacks the {key!r} field")
    return manifest


def stable(manifest: dict) -> dict:
    """The manifest without the fields that record one particular run."""
    out = {k: v for k, v in manifest.items() if k in KEEP_TOP}
    if isinstance(out.get("environment"), dict):
        out["environment"] = {k: v for k, v in out["environment"].items() if k in KEEP_ENVIRONMENT}
    if isinstance(out.get("code"), dict):
        out["code"] = {k: v for k, v in out["code"].items() if k in KEEP_CODE}
    if isinstance(out.get("inputs"), dict):
        out["inputs"] = {
            name: {k: v for k, v in rec.items() if k in KEEP_INPUT}
            if isinstance(rec, dict)
            else rec
            for name, rec in out["inputs"].items()
        }
    return out


def collect(inputs: dict[str, pathlib.Path]) -> dict[str, dict]:
    """``{"<stage>-<fingerprint>.json": manifest}`` for every reachable manifest.

    A direct input without a manifest (a hand-built artifact, e.g. in tests) is skipped; a
    manifest that names an upstream artifact whose manifest is missing or whose fingerprint
    differs is an error, since the bill of materials would then be incomplete or wrong.
    """
    found: dict[str, dict] = {}
    loaded: dict[str, dict | None] = {}  # artifact dir (absolute) -> manifest, None if absent
    # (artifact dir, (referring manifest, input name, expected fingerprint) or None)
    queue = deque((pathlib.Path(path), None) for _, path in sorted(inputs.items()))
    while queue:
        artifact, link = queue.popleft()
        key = os.path.normpath(os.path.abspath(artifact))
        first_visit = key not in loaded
        path = artifact / MANIFEST
        if first_visit:
            loaded[key] = None
            if path.is_file():
                loaded[key] = _read(path)
                found[f"{loaded[key]['stage']}-{loaded[key]['fingerprint']}.json"] = loaded[key]
        manifest = loaded[key]
        if manifest is None:
            if link is None:
                continue
            raise LineageError(
                f"{link[0]}: input {link[1]!r} points to {artifact}, which has no {MANIFEST}; "
                "run the release from the directory the pipeline ran in (the repository root) "
                "and make sure the upstream artifact still exists"
            )
        # Every link is checked, also to an artifact reached before by another path.
        if link is not None and link[2] is not None and link[2] != manifest["fingerprint"]:
            raise LineageError(
                f"{link[0]}: input {link[1]!r} expects fingerprint {link[2]}, but {path} has "
                f"{manifest['fingerprint']}; the upstream artifact was rebuilt or replaced"
            )
        if not first_visit:
            continue
        for name, record in sorted((manifest.get("inputs") or {}).items()):
            if not isinstance(record, dict) or "path" not in record:
                raise LineageError(f"{path}: input {name!r} has no 'path' field")
            queue.append((pathlib.Path(record["path"]), (path, name, record.get("fingerprint"))))
    return found


def write(lineage_dir: pathlib.Path, manifests: dict[str, dict]) -> None:
    """Write each manifest's stable part (digest and per-file hashes stay checkable)."""
    lineage_dir.mkdir(parents=True)
    for name, manifest in sorted(manifests.items()):
        (lineage_dir / name).write_text(dump_json(stable(manifest)), encoding="utf-8")


def summary(manifests: dict[str, dict], order: Sequence[str]) -> list[dict]:
    """``[{"stage", "label", "fingerprint", "digest"}]`` of the manifests, in pipeline order
    (``order``: the stages as the pipeline runs them, the release config's ``stages``)."""
    rows = []
    for manifest in manifests.values():
        rows.append(
            {
                "stage": manifest["stage"],
                "label": manifest.get("label", manifest["stage"]),
                "fingerprint": manifest["fingerprint"],
                "digest": manifest.get("digest"),
            }
        )

    def rank(row: dict) -> tuple:
        stage = row["stage"]
        position = order.index(stage) if stage in order else len(order)
        return (position, stage, row["label"], row["fingerprint"])

    return sorted(rows, key=rank)
