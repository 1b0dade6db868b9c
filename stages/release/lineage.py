"""The bill of materials: every provenance manifest reachable from the release's inputs.

A manifest's ``inputs`` maps an input name to ``{"path", "fingerprint", "digest", ...}``, where
``path`` is the upstream artifact directory relative to the working directory the job ran in
(the repository root under Snakemake). The walk is the platform's (``reprolm.lineage.build``,
its read-only artifact API, which job code may use to read manifests): it follows those links
(or, for a tree moved elsewhere, the fingerprint under ``artifacts/<stage>/``); this module only
refuses a graph with a missing or unreadable manifest or a link whose fingerprint differs.

What is written is each manifest less its record of one particular run (start/end times, argv,
host, CPU, git commit and diff, MLflow run id, storage paths): those differ between two builds
of the same artifact, and keeping them would make the release's own payload differ between two
rebuilds of the pipeline.
Identity and content (fingerprint, digest, per-file hashes, config, input fingerprints and
digests, code digest, package versions, metrics) are kept whole.
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence

from reprolm.canonical import dump_json
from reprolm.lineage import build as build_lineage

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
    manifest that names an upstream artifact whose manifest is missing or unreadable, or whose
    fingerprint differs, is an error, since the bill of materials would then be incomplete or
    wrong.
    """
    root = pathlib.Path.cwd()  # input paths are relative to the directory the pipeline ran in
    found: dict[str, dict] = {}
    for _, path in sorted(inputs.items()):
        if not (pathlib.Path(path) / MANIFEST).is_file():
            continue
        graph = build_lineage(pathlib.Path(path), root)
        for node in graph.walk():
            where = (node.directory or pathlib.Path(node.id)) / MANIFEST
            if node.error:
                raise LineageError(node.error)
            for name, link in sorted(node.links.items()):
                _check_link(where, name, link, graph.nodes)
            found[f"{node.stage}-{node.fingerprint}.json"] = node.manifest
    return found


def _check_link(where: pathlib.Path, name: str, link, nodes: dict) -> None:
    """A link must reach a manifest on disk with the fingerprint it records."""
    record = link.record
    if "path" not in record:
        raise LineageError(f"{where}: input {name!r} has no 'path' field")
    target = nodes.get(link.target) if link.target else None
    if target is None or target.directory is None or link.located == "embedded":
        raise LineageError(
            f"{where}: input {name!r} points to {record['path']}, which has no {MANIFEST}; "
            "run the release from the directory the pipeline ran in (the repository root) "
            "and make sure the upstream artifact still exists"
        )
    if target.error:
        raise LineageError(target.error)
    expected = record.get("fingerprint")
    if expected is not None and expected != target.fingerprint:
        raise LineageError(
            f"{where}: input {name!r} expects fingerprint {expected}, but "
            f"{target.directory / MANIFEST} has {target.fingerprint}; the upstream artifact was "
            "rebuilt or replaced"
        )


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
