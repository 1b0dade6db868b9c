"""Lineage graphs: from an artifact's manifest to every artifact it was built from, and back.

A manifest's ``inputs`` name each upstream artifact by ``path`` (relative to the working
directory the job ran in), ``stage``, ``fingerprint`` and ``digest``. The upstream walk follows
the path first, then looks the fingerprint up under ``<root>/artifacts/<stage>/*-<fingerprint>``
(a tree moved or re-pulled elsewhere), then falls back to the copy a release embeds in its
``lineage/`` directory (a release copied alone still has its bill of materials). A node found
only in such a copy has no payload on disk: ``Node.directory`` is None.

This module only builds graphs; checking them is ``reprolm.audit``'s job.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reprolm.hashing import MANIFEST_NAME
from reprolm.manifest import ManifestError, load_manifest, read_manifest
from reprolm.plan import ARTIFACTS_ROOT

LINEAGE_DIR = "lineage"
MIN_FINGERPRINT_PREFIX = 6


class TargetError(ValueError):
    """What the user named is not an artifact (the message says what was tried)."""


@dataclass
class Link:
    """One input of a node: the recorded link and the node it resolved to (None: missing)."""

    name: str
    record: dict[str, Any]
    target: str | None = None  # node id
    located: str = ""  # "path" | "fingerprint" | "embedded" | "" (missing)
    refused: str = ""  # why the recorded path was not followed (it leaves artifacts/)


@dataclass
class Node:
    """One artifact of a lineage: its manifest and, when its payload is on disk, its directory."""

    manifest: dict[str, Any]
    directory: Path | None
    embedded: dict[str, Any] | None = None  # the copy a release embeds, when one was seen
    links: dict[str, Link] = field(default_factory=dict)
    error: str | None = None  # the manifest on disk was unreadable

    @property
    def stage(self) -> str:
        return str(self.manifest.get("stage", "?"))

    @property
    def fingerprint(self) -> str:
        return str(self.manifest.get("fingerprint", "?"))

    @property
    def label(self) -> str:
        return str(self.manifest.get("label") or self.stage)

    @property
    def id(self) -> str:
        return node_id(self.stage, self.label, self.fingerprint)


@dataclass
class Lineage:
    """A lineage graph rooted at ``top``; ``nodes`` maps node id to node."""

    top: str
    root: Path
    nodes: dict[str, Node]

    def walk(self) -> list[Node]:
        """Nodes in breadth-first order from the top, each once."""
        seen, order, queue = set(), [], deque([self.top])
        while queue:
            key = queue.popleft()
            if key in seen:
                continue
            seen.add(key)
            order.append(self.nodes[key])
            queue.extend(
                link.target for _, link in sorted(self.nodes[key].links.items()) if link.target
            )
        return order

    def hostile(self) -> list[str]:
        """Every unreadable or malformed manifest and refused input path of the graph."""
        found = []
        for node in self.walk():
            found += [node.error] if node.error else []
            found += [link.refused for _, link in sorted(node.links.items()) if link.refused]
        return found


def node_id(stage: str, label: str, fingerprint: str) -> str:
    return f"{stage}/{label}-{fingerprint}"


def working_root(artifact_dir: Path) -> Path:
    """The directory the pipeline ran in: above ``artifacts/<stage>/<dir>``, else the cwd."""
    artifact_dir = artifact_dir.resolve()
    if artifact_dir.parent.parent.name == ARTIFACTS_ROOT:
        return artifact_dir.parent.parent.parent
    return Path.cwd().resolve()


def display_path(path: Path, root: Path) -> str:
    """``path`` relative to the working root when it lies below it."""
    try:
        return Path(path).resolve().relative_to(root).as_posix()
    except ValueError:
        return str(path)


def find_by_fingerprint(root: Path, fingerprint: str, stage: str = "*") -> list[Path]:
    """Artifact directories ``<root>/artifacts/<stage>/*-<fingerprint>*`` holding a manifest."""
    return sorted(
        path.parent
        for path in (root / ARTIFACTS_ROOT).glob(f"{stage}/*-{fingerprint}*/{MANIFEST_NAME}")
        if path.parent.name.rpartition("-")[2].startswith(fingerprint) and not _hidden(path.parent)
    )


def _hidden(directory: Path) -> bool:
    """An install leftover (``.<name>.old-<pid>``, ``.partial-<pid>``), never an artifact."""
    return directory.name.startswith(".") or directory.parent.name.startswith(".")


def artifact_of(path: Path) -> Path | None:
    """The artifact directory holding ``path`` (itself, or the nearest parent with a manifest)."""
    path = path.resolve()
    for candidate in (path, *path.parents):
        if (candidate / MANIFEST_NAME).is_file():
            return candidate
    return None


def resolve_target(spec: str, root: Path | None = None) -> Path:
    """An artifact directory from a directory, a file inside one, or a fingerprint (prefix)."""
    path = Path(spec)
    if path.exists():
        artifact = artifact_of(path)
        if artifact is None:
            raise TargetError(
                f"{spec}: neither an artifact directory nor a file inside one (no {MANIFEST_NAME} "
                "here or in a parent directory)"
            )
        return artifact
    fingerprint = spec.rpartition("-")[2]
    hexdigits = set("0123456789abcdef")
    if len(fingerprint) >= MIN_FINGERPRINT_PREFIX and set(fingerprint) <= hexdigits:
        base = root or Path.cwd()
        found = find_by_fingerprint(base, fingerprint)
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            names = ", ".join(display_path(p, base.resolve()) for p in found)
            raise TargetError(f"{spec}: fingerprint matches several artifacts: {names}")
        raise TargetError(
            f"{spec}: no artifact with this fingerprint under {base / ARTIFACTS_ROOT}/*/ "
            "(run from the working directory, or pass --root)"
        )
    raise TargetError(f"{spec}: no such file or directory, and not a fingerprint")


def embedded_manifests(artifact_dir: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """``{(stage, fingerprint): manifest}`` of a release's ``lineage/*.json`` (empty if none)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    folder = artifact_dir / LINEAGE_DIR
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob("*.json")):
        try:
            manifest = load_manifest(path, ("stage", "fingerprint"))
        except (OSError, ManifestError):
            continue  # a damaged copy is reported by the release's own payload check
        found[(manifest["stage"], manifest["fingerprint"])] = manifest
    return found


def _load_disk(directory: Path) -> tuple[dict[str, Any] | None, str | None]:
    try:
        return read_manifest(directory), None
    except ManifestError as error:
        return None, str(error)


def build(artifact_dir: Path, root: Path | None = None) -> Lineage:
    """The upstream lineage graph of ``artifact_dir``.

    An unreadable manifest (the top one included) becomes a node with ``error`` set, so an
    audit reports it as a broken node instead of stopping.
    """
    artifact_dir = Path(artifact_dir).resolve()
    root = (root or working_root(artifact_dir)).resolve()
    top_manifest, top_error = _load_disk(artifact_dir)
    if top_manifest is None:
        label, _, fingerprint = artifact_dir.name.rpartition("-")
        top_manifest = {"stage": artifact_dir.parent.name, "label": label,
                        "fingerprint": fingerprint}  # fmt: skip
    embedded = embedded_manifests(artifact_dir)
    nodes: dict[str, Node] = {}
    by_key: dict[tuple[str, str], str] = {}  # (stage, fingerprint) -> node id
    by_dir: dict[str, str] = {}

    def add(manifest: dict[str, Any], directory: Path | None, error: str | None = None) -> str:
        node = Node(manifest, directory, error=error)
        node.embedded = embedded.get((node.stage, node.fingerprint))
        nodes[node.id] = node
        by_key[(node.stage, node.fingerprint)] = node.id
        if directory is not None:
            by_dir[os.path.normpath(directory)] = node.id
        queue.append(node.id)
        return node.id

    def locate(record: dict[str, Any]) -> tuple[str | None, str]:
        stage, fingerprint = record.get("stage"), record.get("fingerprint")
        if record.get("path"):
            directory = (root / record["path"]).resolve()
            if os.path.normpath(directory) in by_dir:
                return by_dir[os.path.normpath(directory)], "path"
            if (directory / MANIFEST_NAME).is_file():
                manifest, error = _load_disk(directory)
                if manifest is not None:
                    known = by_key.get((manifest["stage"], manifest["fingerprint"]))
                    if known is not None:
                        return known, "path"
                return add(manifest or _stub(record), directory, error), "path"
        if (stage, fingerprint) in by_key:
            return by_key[(stage, fingerprint)], "fingerprint"
        if stage and fingerprint:
            found = find_by_fingerprint(root, fingerprint, stage)
            if found:
                manifest, error = _load_disk(found[0])
                return add(manifest or _stub(record), found[0], error), "fingerprint"
            if (stage, fingerprint) in embedded:
                return add(embedded[(stage, fingerprint)], None), "embedded"
        return None, ""

    queue: deque[str] = deque()
    top = add(top_manifest, artifact_dir, top_error)
    while queue:
        node = nodes[queue.popleft()]
        for name, record in sorted((node.manifest.get("inputs") or {}).items()):
            record = record if isinstance(record, dict) else {}
            refused = outside_artifacts(record.get("path"), root)
            if refused:
                where = (node.directory or Path(node.id)) / MANIFEST_NAME
                node.links[name] = Link(name, record, refused=f"{where}: inputs.{name}.{refused}")
                continue
            target, located = locate(record)
            if target is not None and nodes[target].directory is None:
                located = "embedded"  # also when reached before along another link
            node.links[name] = Link(name, record, target, located)
    return Lineage(top, root, nodes)


def outside_artifacts(path: Any, root: Path) -> str:
    """Why an input's recorded ``path`` must not be followed ("" when it may be): it has to
    name a directory inside ``<root>/artifacts/`` once resolved (symlinks included)."""
    if not path:
        return ""
    top = (root / ARTIFACTS_ROOT).resolve()
    if not isinstance(path, str) or not (root / path).resolve().is_relative_to(top):
        return f"path {str(path)[:200]!r} leads outside {top}: refused, not followed"
    return ""


def _stub(record: dict[str, Any]) -> dict[str, Any]:
    """A placeholder manifest for an input whose manifest on disk is unreadable."""
    return {"stage": record.get("stage", "?"), "fingerprint": record.get("fingerprint", "?")}


def scan(root: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every readable manifest under ``<root>/artifacts/<stage>/<dir>/`` (dot-directories,
    install leftovers, skipped)."""
    found = []
    for path in sorted((root / ARTIFACTS_ROOT).glob(f"*/*/{MANIFEST_NAME}")):
        if _hidden(path.parent):
            continue
        try:
            found.append((path.parent, read_manifest(path.parent)))
        except ManifestError:
            continue
    return found


def dependents(artifact_dir: Path, root: Path | None = None) -> dict[str, Any]:
    """The reverse tree: every artifact under ``artifacts/`` built (transitively) from this one.

    ``{"id", "path", "dependents": [{"via": input name, **subtree}]}``; an artifact reached
    along two paths appears under each, its subtree expanded once (later: ``"ref": true``).
    """
    artifact_dir = Path(artifact_dir).resolve()
    root = (root or working_root(artifact_dir)).resolve()
    manifests = scan(root)
    users: dict[tuple[str, str], list[tuple[str, Path, dict[str, Any]]]] = {}
    for directory, manifest in manifests:
        for name, record in sorted((manifest.get("inputs") or {}).items()):
            if isinstance(record, dict):
                key = (record.get("stage"), record.get("fingerprint"))
                users.setdefault(key, []).append((name, directory, manifest))
    expanded: set[str] = set()

    def subtree(directory: Path, manifest: dict[str, Any]) -> dict[str, Any]:
        ident = node_id(manifest["stage"], manifest.get("label") or manifest["stage"],
                        manifest["fingerprint"])  # fmt: skip
        out: dict[str, Any] = {"id": ident, "path": display_path(directory, root)}
        if ident in expanded:
            return {**out, "ref": True}
        expanded.add(ident)
        key = (manifest["stage"], manifest["fingerprint"])
        out["dependents"] = [
            {"via": name, **subtree(user_dir, user)} for name, user_dir, user in users.get(key, [])
        ]
        return out

    return subtree(artifact_dir, read_manifest(artifact_dir))


def upstream_tree(lineage: Lineage) -> dict[str, Any]:
    """The upstream graph as a nested tree (a node reached again: ``"ref": true``)."""
    expanded: set[str] = set()

    def subtree(key: str) -> dict[str, Any]:
        node = lineage.nodes[key]
        out: dict[str, Any] = {
            "id": node.id,
            "stage": node.stage,
            "fingerprint": node.fingerprint,
            "digest": node.manifest.get("digest"),
            "path": display_path(node.directory, lineage.root) if node.directory else None,
        }
        if key in expanded:
            return {**out, "ref": True}
        expanded.add(key)
        inputs: dict[str, Any] = {}
        for name, link in sorted(node.links.items()):
            if link.target is None:
                inputs[name] = {"missing": True, **{k: link.record.get(k) for k in
                                                    ("stage", "fingerprint", "path")}}  # fmt: skip
            else:
                inputs[name] = subtree(link.target)
        out["inputs"] = inputs
        return out

    return subtree(lineage.top)
