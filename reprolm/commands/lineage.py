"""Lineage commands: audit, lineage (upstream or --reverse), diff, export-prov.

Targets are an artifact directory, a file inside one (e.g. an evaluate artifact's
``results.json``), or a fingerprint looked up under ``<root>/artifacts/*/*-<fingerprint>``.
``--root`` is the directory the pipeline ran in (input paths in manifests are relative to it);
by default the directory above ``artifacts/``, else the current directory.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from reprolm import audit as audit_module
from reprolm import diff as diff_module
from reprolm import lineage as lineage_module
from reprolm import prov
from reprolm.canonical import dump_json
from reprolm.commands import add_command, emit

EXIT_BAD_INPUT = 2


def _hostile(args: argparse.Namespace, lineage: lineage_module.Lineage) -> bool:
    """Name every malformed manifest or refused input path of ``lineage`` on stderr."""
    found = lineage.hostile()
    for message in found:
        print(f"reprolm {args.command}: {message}", file=sys.stderr)
    return bool(found)


def _target(args: argparse.Namespace, spec: str) -> Path | None:
    try:
        return lineage_module.resolve_target(spec, args.root)
    except lineage_module.TargetError as error:
        print(f"reprolm {args.command}: {error}", file=sys.stderr)
        return None


def _required(values: list[str] | None) -> tuple[str, ...] | None:
    """``--require mlflow,dvc`` (repeatable) as kinds; None after an error message."""
    names = (name.strip() for value in values or [] for name in value.split(","))
    kinds = tuple(dict.fromkeys(name for name in names if name))
    unknown = [k for k in kinds if k not in audit_module.REQUIRABLE]
    if unknown:
        choices = ", ".join(audit_module.REQUIRABLE)
        print(f"reprolm: --require {', '.join(unknown)}: not one of {choices}", file=sys.stderr)
        return None
    return kinds


def cmd_audit(args: argparse.Namespace) -> int:
    """Broken links exit 1; missing payloads exit 1 unless --allow-missing; store checks that
    cannot be made here (no MLflow store, DVC absent or its remote unreachable) are listed and
    exit 1 only for the kinds named by --require."""
    required = _required(args.require)
    artifact = _target(args, args.target)
    if artifact is None or required is None:
        return EXIT_BAD_INPUT
    report = audit_module.audit(artifact, root=args.root, target=args.target, require=required)
    emit(report.as_dict(), args.json, audit_module.render(report))
    for message in report.unmet_requirements:
        print(f"reprolm audit: {message}", file=sys.stderr)
    if _hostile(args, report.lineage):
        return EXIT_BAD_INPUT
    if report.problems or report.unmet_requirements:
        return 1
    return 1 if report.missing and not args.allow_missing else 0


def _tree_lines(tree: dict[str, Any], key: str, depth: int = 0, via: str = "") -> list[str]:
    pad, name = "  " * depth, f"{via}: " if via else ""
    if tree.get("missing"):
        where = tree.get("path") or f"{tree.get('stage')}-{tree.get('fingerprint')}"
        return [f"{pad}{name}MISSING {where}"]
    digest = f"  {tree['digest'][:16]}" if tree.get("digest") else ""
    where = f"  {tree['path']}" if tree.get("path") else "  (manifest only)"
    if tree.get("ref"):
        return [f"{pad}{name}{tree['id']}  (see above)"]
    lines = [f"{pad}{name}{tree['id']}{digest}{where}"]
    children = tree.get(key) or {}
    items = children.items() if isinstance(children, dict) else [(c["via"], c) for c in children]
    for child_via, child in items:
        lines += _tree_lines(child, key, depth + 1, child_via)
    return lines


def cmd_lineage(args: argparse.Namespace) -> int:
    artifact = _target(args, args.target)
    if artifact is None:
        return EXIT_BAD_INPUT
    if args.reverse:
        tree = lineage_module.dependents(artifact, args.root)
        emit(tree, args.json, "\n".join(_tree_lines(tree, "dependents")))
        return 0
    graph = lineage_module.build(artifact, args.root)
    if _hostile(args, graph):
        return EXIT_BAD_INPUT
    tree = lineage_module.upstream_tree(graph)
    emit(tree, args.json, "\n".join(_tree_lines(tree, "inputs")))
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    first, second = _target(args, args.a), _target(args, args.b)
    if first is None or second is None:
        return EXIT_BAD_INPUT
    graphs = [lineage_module.build(first, args.root), lineage_module.build(second, args.root)]
    if any([_hostile(args, graph) for graph in graphs]):
        return EXIT_BAD_INPUT
    result = diff_module.diff(*graphs)
    emit(result, args.json, diff_module.render(result))
    return 0


def cmd_export_prov(args: argparse.Namespace) -> int:
    artifact = _target(args, args.target)
    if artifact is None:
        return EXIT_BAD_INPUT
    graph = lineage_module.build(artifact, args.root)
    if _hostile(args, graph):
        return EXIT_BAD_INPUT
    document = prov.export(graph)
    text = dump_json(document)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output} ({len(document['entity'])} entities)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _with_root(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
    sub.add_argument(
        "--root", type=Path, default=None, help="directory the pipeline ran in (input paths base)"
    )
    return sub


def register(commands: Any) -> None:
    audit = _with_root(
        add_command(commands, "audit", cmd_audit, "verify an artifact's lineage, every hash")
    )
    audit.add_argument("target", help="artifact dir, fingerprint, release dir or metrics file")
    audit.add_argument(
        "--allow-missing",
        action="store_true",
        help="exit 0 when nothing is broken but upstream payloads are not on disk",
    )
    audit.add_argument(
        "--require",
        action="append",
        metavar="KINDS",
        help="comma list of store checks (mlflow, dvc) that must be checkable here: exit 1 "
        "when one cannot be made (no MLflow store, DVC absent or its remote unreachable)",
    )
    lineage = _with_root(
        add_command(commands, "lineage", cmd_lineage, "an artifact's upstream lineage tree")
    )
    lineage.add_argument("target", help="artifact dir, fingerprint or a file inside an artifact")
    lineage.add_argument(
        "--reverse", action="store_true", help="everything under artifacts/ built from it"
    )
    diff = _with_root(
        add_command(commands, "diff", cmd_diff, "what differs between two artifacts' lineages")
    )
    diff.add_argument("a")
    diff.add_argument("b")
    export = _with_root(
        commands.add_parser(
            "export-prov", help="the lineage as W3C PROV-JSON", description=cmd_export_prov.__doc__
        )
    )
    export.set_defaults(func=cmd_export_prov)
    export.add_argument("target", help="release or artifact dir, fingerprint")
    export.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
