"""Diff two artifacts' lineages: config keys, code, environment, digests, inputs (recursively).

The two tops are compared, then their inputs paired by name; a pair whose fingerprints and
digests are equal is the same job with the same output and is not descended into (its whole
upstream is then identical by construction). Each pair is compared once even when reached along
several paths (a shared world or curate artifact).
"""

from __future__ import annotations

from typing import Any

from reprolm.lineage import Lineage, Node

SECTIONS = ("config", "code", "environment")
_MISSING = object()


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted key paths to leaf values (lists are leaves)."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def _changed(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    flat_a, flat_b = flatten(a or {}), flatten(b or {})
    changes = []
    for key in sorted(set(flat_a) | set(flat_b)):
        old, new = flat_a.get(key, _MISSING), flat_b.get(key, _MISSING)
        if old != new:
            changes.append(
                {
                    "key": key,
                    "old": None if old is _MISSING else old,
                    "new": None if new is _MISSING else new,
                    "kind": "added"
                    if old is _MISSING
                    else "removed"
                    if new is _MISSING
                    else "changed",
                }
            )
    return changes


def diff(a: Lineage, b: Lineage) -> dict[str, Any]:
    """``{"a", "b", "identical", "nodes": [...]}``: one entry per differing pair of nodes.

    Each entry: ``via`` (input names from the top, e.g. ``["model", "model"]``), ``a``/``b``
    node ids, ``digest`` (old/new or None), ``config``/``code``/``environment`` changes
    (``{"key", "old", "new", "kind"}``), ``inputs_added``/``inputs_removed`` (names).
    """
    entries: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()

    def visit(node_a: Node, node_b: Node, via: list[str]) -> None:
        if (node_a.id, node_b.id) in seen:
            return
        seen.add((node_a.id, node_b.id))
        entry: dict[str, Any] = {"via": via, "a": node_a.id, "b": node_b.id}
        digest_a, digest_b = node_a.manifest.get("digest"), node_b.manifest.get("digest")
        entry["digest"] = None if digest_a == digest_b else {"old": digest_a, "new": digest_b}
        for section in SECTIONS:
            entry[section] = _changed(
                node_a.manifest.get(section) or {}, node_b.manifest.get(section) or {}
            )
        names_a, names_b = set(node_a.links), set(node_b.links)
        entry["inputs_added"] = sorted(names_b - names_a)
        entry["inputs_removed"] = sorted(names_a - names_b)
        if (
            entry["digest"]
            or any(entry[s] for s in SECTIONS)
            or entry["inputs_added"]
            or entry["inputs_removed"]
            or node_a.id != node_b.id
        ):
            entries.append(entry)
        for name in sorted(names_a & names_b):
            link_a, link_b = node_a.links[name], node_b.links[name]
            same = all(
                link_a.record.get(k) == link_b.record.get(k) for k in ("fingerprint", "digest")
            )
            if same or link_a.target is None or link_b.target is None:
                if not same:
                    entries.append(
                        {"via": [*via, name], "a": link_a.target, "b": link_b.target,
                         "unresolved": True}
                    )  # fmt: skip
                continue
            visit(a.nodes[link_a.target], b.nodes[link_b.target], [*via, name])

    visit(a.nodes[a.top], b.nodes[b.top], [])
    return {"a": a.top, "b": b.top, "identical": not entries, "nodes": entries}


def render(result: dict[str, Any]) -> str:
    """Indented text: one block per differing node, ``key: old → new`` lines."""
    if result["identical"]:
        return f"{result['a']} and {result['b']}: identical lineages"
    lines = [f"{result['a']} → {result['b']}"]
    for entry in result["nodes"]:
        depth = len(entry["via"])
        pad = "  " * depth
        where = " › ".join(entry["via"]) or "(top)"
        if entry.get("unresolved"):
            lines.append(
                f"{pad}{where}: differs, but an input is not on disk ({entry['a']} / {entry['b']})"
            )
            continue
        head = entry["a"] if entry["a"] == entry["b"] else f"{entry['a']} → {entry['b']}"
        lines.append(f"{pad}{where}: {head}")
        if entry["digest"]:
            lines.append(
                f"{pad}  digest: {entry['digest']['old'][:16]} → {entry['digest']['new'][:16]}"
            )
        for section in SECTIONS:
            for change in entry[section]:
                lines.append(
                    f"{pad}  {section}.{change['key']}: {change['old']!r} → {change['new']!r}"
                )
        for name in entry["inputs_added"]:
            lines.append(f"{pad}  input added: {name}")
        for name in entry["inputs_removed"]:
            lines.append(f"{pad}  input removed: {name}")
    return "\n".join(lines)
