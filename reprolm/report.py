"""The end-of-run summary: eval scores per checkpoint and each training stage's signals.

Read from the manifests alone (metrics recorded by each job), so it works on any finished run,
including one pulled from a remote, without loading a model.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from reprolm.manifest import ManifestError, read_manifest
from reprolm.stagetable import TRAINING_STAGES

if TYPE_CHECKING:
    from reprolm.plan import Plan

PRIMARY_METRICS = ("exact_match", "acc")
SPEC_PREFIX = "specs/"  # spec results: only their `primary` (the spec names its own metric)


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
        primary = {k: v for k, v in metrics.items() if _is_primary(k)}
        columns += [k for k in sorted(primary) if k not in columns]
        rows.append((job.label, primary))
    return columns, rows


def _is_primary(key: str) -> bool:
    name = key.rsplit("/", 1)[-1]
    return name == "primary" if key.startswith(SPEC_PREFIX) else name in PRIMARY_METRICS


# (start key, end key) patterns of the signals a training stage records over its run.
_PAIRS = (
    ("first_{}", "last_{}"),
    ("{}_start", "{}_end"),
    ("first_quarter_{}", "last_quarter_{}"),
    ("{}_first_quarter", "{}_last_quarter"),
)


def training_signals(metrics: dict[str, object]) -> str:
    """``loss 6.2 -> 0.9, margin 0.4 -> 17.6`` from a training stage's start/end metrics.

    Quarter means are preferred over single logged steps when both exist (less noise).
    """
    signals: dict[str, str] = {}
    for start_pattern, end_pattern in _PAIRS:
        for key in sorted(metrics):
            for name in _names(key, start_pattern):
                if name.startswith("quarter_"):
                    continue
                end = end_pattern.format(name)
                if end in metrics:
                    signals[name] = f"{name} {_number(metrics[key])} -> {_number(metrics[end])}"
    if "steps" in metrics:
        signals["steps"] = f"{metrics['steps']} steps"
    return ", ".join(signals.values())


def _names(key: str, pattern: str) -> list[str]:
    prefix, _, suffix = pattern.partition("{}")
    if key.startswith(prefix) and key.endswith(suffix) and len(key) > len(prefix + suffix):
        return [key[len(prefix) : len(key) - len(suffix)]]
    return []


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
    for stage in TRAINING_STAGES:
        for job in plan.by_stage(stage):
            try:
                metrics = read_manifest(Path(job.artifact_dir))["metrics"]
            except ManifestError:
                continue
            lines.append(f"  {stage:9s} {training_signals(metrics)}")
    lines.append(f"\nrelease: {plan.release.artifact_dir}")
    return "\n".join(lines)
