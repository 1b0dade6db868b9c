"""The end-of-run summary: eval scores per checkpoint and each training stage's signals.

Read from the manifests alone (metrics recorded by each job), so it works on any finished run,
including one pulled from a remote, without loading a model.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from reprolm.manifest import ManifestError, read_manifest

if TYPE_CHECKING:
    from reprolm.plan import Plan

PRIMARY_METRICS = ("exact_match", "acc")


def _number(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def eval_rows(plan: Plan) -> tuple[list[str], list[tuple[str, dict[str, object]]]]:
    """Columns (task/metric) and one row of primary metrics per evaluated checkpoint."""
    rows: list[tuple[str, dict[str, object]]] = []
    columns: list[str] = []
    for job in plan.by_stage("evaluate"):
        try:
            metrics = read_manifest(Path(job.artifact_dir))["metrics"]
        except ManifestError:
            continue
        primary = {k: v for k, v in metrics.items() if k.rsplit("/", 1)[-1] in PRIMARY_METRICS}
        columns += [k for k in sorted(primary) if k not in columns]
        rows.append((job.label, primary))
    return columns, rows


def summary_table(plan: Plan) -> str:
    """A compact Markdown summary of a finished (or partly finished) run."""
    columns, rows = eval_rows(plan)
    lines = [f"\nrecipe {plan.recipe['name']}: eval scores per checkpoint"]
    if rows:
        lines.append("| checkpoint | " + " | ".join(columns) + " |")
        lines.append("|---" * (len(columns) + 1) + "|")
        for label, metrics in rows:
            cells = [_number(metrics.get(column, "-")) for column in columns]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    else:
        lines.append("(no evaluation finished)")
    lines.append("\ntraining signals")
    for stage in ("pretrain", "sft", "dpo", "rlvr"):
        for job in plan.by_stage(stage):
            try:
                metrics = read_manifest(Path(job.artifact_dir))["metrics"]
            except ManifestError:
                continue
            shown = ", ".join(f"{k}={_number(v)}" for k, v in sorted(metrics.items()))
            lines.append(f"  {stage:9s} {shown}")
    lines.append(f"\nrelease: {plan.release.artifact_dir}")
    return "\n".join(lines)
