"""The end-of-run summary: eval scores per checkpoint and each training stage's signals.

Read from the artifacts alone (the evaluations' results, the metrics each training job recorded
in its manifest), so it works on any finished run, including one pulled from a remote, without
loading a model.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from reprolm.manifest import ManifestError, read_manifest
from reprolm.stagetable import CHECKPOINT_STAGES, TRAINING_STAGES

if TYPE_CHECKING:
    from reprolm.plan import Plan

EVAL_RESULTS = "results.json"


def _number(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def eval_table(plan: Plan) -> str | None:
    """The tasks x checkpoints table of the finished evaluations, a row per checkpoint (None:
    none finished). Rendered by the job code's one table (``evals.table``), imported here for
    display only, as the CLI front ends do: this summary is the ``reprolm`` CLI's output."""
    evals = {}
    for job in plan.by_stage("evaluate"):
        artifact = Path(job.artifact_dir)
        try:
            read_manifest(artifact)
        except ManifestError:
            continue
        if (artifact / EVAL_RESULTS).is_file():
            evals[job.label] = artifact
    if not evals:
        return None
    from evals.table import build, checkpoint_markdown

    return checkpoint_markdown(build(evals, CHECKPOINT_STAGES))


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
    table = eval_table(plan)
    lines = [f"\nrecipe {plan.recipe['name']}: eval scores per checkpoint (primary metrics)"]
    lines.append(table.rstrip("\n") if table else "(no evaluation finished)")
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
