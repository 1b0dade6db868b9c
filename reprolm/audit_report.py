"""The audit's findings: statuses, the per-node and whole-lineage reports, the text rendering.

Kept apart from the checks (``reprolm.audit``) so the report model reads on its own: what
counts as broken, missing, or not checkable here, and which store checks can be required.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reprolm.lineage import Lineage, Node

OK, BROKEN, MISSING, NOT_CHECKED = "ok", "broken", "missing", "not checked"
SHORT = 16
# The checks that ask a store, which a fresh clone may not have, and how to give it one.
REQUIRABLE = {
    "mlflow": (
        "point MLFLOW_TRACKING_URI at the store the artifacts were tracked in (or put its "
        "mlruns.db in the working root; REPROLM_MLFLOW_EXPERIMENT names the experiment), and "
        "`reprolm mlflow sync` to send spooled runs"
    ),
    "dvc": (
        "audit inside the DVC repository the artifacts were committed to (`reprolm dvc init`, "
        "`reprolm dvc commit` records them), with a reachable remote (`dvc remote list`, "
        "`dvc remote modify --local <name> url <path>`) and `reprolm dvc pull` to fill the cache"
    ),
}


@dataclass
class NodeReport:
    """The checks of one node: name -> {"status", "detail"}; ``problems`` are broken links."""

    node: Node
    path: str | None
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    bytes_hashed: int = 0
    # Outputs produced elsewhere: what made them (reprolm.externalaudit); empty for the others.
    origin: dict[str, Any] = field(default_factory=dict)

    def check(self, name: str, status: str, detail: str = "") -> None:
        self.checks[name] = {"status": status, "detail": detail}

    @property
    def status(self) -> str:
        return BROKEN if self.problems else MISSING if self.missing else OK

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.node.id,
            "stage": self.node.stage,
            "label": self.node.label,
            "fingerprint": self.node.fingerprint,
            "digest": self.node.manifest.get("digest"),
            "path": self.path,
            "source": "disk" if self.node.directory else "embedded",
            "status": self.status,
            "checks": self.checks,
            "problems": self.problems,
            "missing": self.missing,
            "inputs": {name: link.target for name, link in sorted(self.node.links.items())},
            **({"origin": self.origin} if self.origin else {}),
        }


@dataclass
class AuditReport:
    target: str
    lineage: Lineage
    nodes: list[NodeReport]
    wall_seconds: float
    hash_seconds: float
    required: tuple[str, ...] = ()

    @property
    def problems(self) -> list[str]:
        return [f"{r.node.id}: {p}" for r in self.nodes for p in r.problems]

    @property
    def missing(self) -> list[str]:
        return [f"{r.node.id}: {m}" for r in self.nodes for m in r.missing]

    @property
    def bytes_hashed(self) -> int:
        return sum(r.bytes_hashed for r in self.nodes)

    def unchecked(self, kind: str | None = None) -> list[tuple[str, str, str]]:
        """(node id, check, reason) of every store check that could not run here."""
        return [
            (r.node.id, name, value["detail"])
            for r in self.nodes
            for name, value in r.checks.items()
            if name in REQUIRABLE and value["status"] == NOT_CHECKED and kind in (None, name)
        ]

    @property
    def not_checkable(self) -> list[str]:
        return [f"{node}: {name}: {detail}" for node, name, detail in self.unchecked()]

    @property
    def unmet_kinds(self) -> list[str]:
        return [kind for kind in self.required if self.unchecked(kind)]

    @property
    def unmet_requirements(self) -> list[str]:
        """One message per required kind of check that could not run on some node."""
        messages = []
        for kind in self.unmet_kinds:
            unchecked = self.unchecked(kind)
            reasons = "; ".join(f"{detail} ({n} artifacts)" for detail, n in _grouped(unchecked))
            messages.append(
                f"--require {kind}: {len(unchecked)} of {len(self.nodes)} {kind} checks could "
                f"not be made here: {reasons}. To make them checkable: {REQUIRABLE[kind]}"
            )
        return messages

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "root": str(self.lineage.root),
            "top": self.lineage.top,
            "ok": not self.problems and not self.missing,
            "problems": self.problems,
            "missing_payloads": self.missing,
            "not_checkable": self.not_checkable,
            "required": list(self.required),
            "unmet_requirements": self.unmet_requirements,
            "nodes": [r.as_dict() for r in self.nodes],
            "stats": {
                "nodes": len(self.nodes),
                "bytes_hashed": self.bytes_hashed,
                "hash_seconds": round(self.hash_seconds, 4),
                "wall_seconds": round(self.wall_seconds, 4),
            },
        }


def _grouped(unchecked: list[tuple[str, str, str]]) -> list[tuple[str, int]]:
    """(reason, how many nodes) in first-seen order."""
    counts: dict[str, int] = {}
    for _, _, detail in unchecked:
        counts[detail] = counts.get(detail, 0) + 1
    return list(counts.items())


def short(digest: Any) -> str:
    return str(digest)[:SHORT] if digest else str(digest)


def render(report: AuditReport) -> str:
    """The human report: one line per node, then broken links and missing payloads."""
    top = report.lineage.nodes[report.lineage.top]
    lines = [f"audit {top.id} ({report.target}), working root {report.lineage.root}"]
    for node in report.nodes:
        checks = "  ".join(f"{name}: {value['status']}" for name, value in node.checks.items())
        lines.append(f"  {node.status.upper():8s}{node.node.id:34s} {checks}")
    origins = [n for n in report.nodes if n.origin]
    if origins:
        lines.append("produced outside the recipe:")
        lines += [f"  {n.node.id}: {n.checks['origin']['detail']}" for n in origins]
    if report.problems:
        lines.append(f"broken links ({len(report.problems)}):")
        lines += [f"  {problem}" for problem in report.problems]
    if report.missing:
        lines.append(f"missing upstream payloads ({len(report.missing)}):")
        lines += [f"  {missing}" for missing in report.missing]
    unchecked = report.unchecked()
    if unchecked:
        lines.append(f"not checkable here ({len(unchecked)}; --require mlflow,dvc to fail on it):")
        for kind in REQUIRABLE:
            for detail, count in _grouped(report.unchecked(kind)):
                lines.append(f"  {kind}: {detail} ({count} of {len(report.nodes)} artifacts)")
    gib = report.bytes_hashed / 2**30
    lines.append(
        f"{len(report.nodes)} artifacts, {gib:.3f} GiB re-hashed in {report.hash_seconds:.2f} s; "
        + (
            "clean"
            if not report.problems and not report.missing
            else f"{len(report.problems)} broken, {len(report.missing)} missing"
        )
        + (f"; {len(unchecked)} store checks not checkable here" if unchecked else "")
        + (f" (required: {', '.join(unmet)})" if (unmet := report.unmet_kinds) else "")
    )
    return "\n".join(lines)
