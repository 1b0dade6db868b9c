"""``results.json`` of an evaluate artifact: an index of its result envelopes (no times, hashes
of the run or paths), and the flat metrics of the runner's summary.

Per result (``specs``, by spec id): its directory, kind, spec hash, metrics, primary metric and
value, instances, for ``evaluate.specs`` the decontamination figure and, when a base model ran a
spec's base variant, ``variant`` (requested id, id run, why; ``variants`` lists them by requested
id), for world tasks whether they were chat formatted (``chat``). The per-task views
``tasks`` (metrics), ``instances``, ``primary_metrics`` and ``task_types`` list each result
under its table name: a world task's short name (``arith_gen``, typed ``generate`` or
``multiple_choice``), else the spec id (typed ``spec``); ``chat_template`` says which world tasks
were chat formatted.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

from evals.jobs import EvalJob
from evals.world import task_type

SUMMARY_FIELDS = ("kind", "spec_hash", "metrics", "primary_metric", "primary", "instances")


def summary(job: EvalJob, result: dict[str, Any], output_dir: pathlib.Path) -> dict[str, Any]:
    """What results.json records of one result envelope."""
    out = {"name": job.name, "dir": job.out_dir.relative_to(output_dir).as_posix()}
    out |= {key: result[key] for key in SUMMARY_FIELDS}
    if "decontamination" in result:
        out["decontamination"] = result["decontamination"]
    if result.get("variant"):
        out["variant"] = result["variant"]
    if result["kind"] == "world":
        out["chat"] = result["spec"]["chat"]
    return out


def is_world(summary: dict[str, Any]) -> bool:
    return summary["kind"] == "world"


def results_json(summaries: dict[str, dict], *, checkpoint: str, config: dict) -> dict:
    """The ``results.json`` document of one evaluation."""
    from evals.lmeval import versions
    from evals.registry import get_spec

    ordered = sorted(summaries.values(), key=lambda s: s["name"])
    return {
        "checkpoint": checkpoint,
        "chat_template": {s["name"]: s["chat"] for s in ordered if is_world(s)},
        "num_fewshot": config["num_fewshot"],
        "limit": config["limit"],
        "tasks": {s["name"]: s["metrics"] for s in ordered},
        "instances": {s["name"]: s["instances"] for s in ordered},
        "primary_metrics": {s["name"]: s["primary_metric"] for s in ordered},
        "task_types": {
            s["name"]: task_type(get_spec(tid)) if is_world(s) else "spec"
            for tid, s in sorted(summaries.items())
        },
        "specs": summaries,
        "variants": {s["variant"]["requested"]: s["variant"] for s in ordered if s.get("variant")},
        "versions": versions(),
    }


def flat_metrics(summaries: dict[str, dict]) -> dict[str, float]:
    """The runner's summary: ``<world task>/<metric>``, and per spec
    ``specs/<safe id>/<metric>``, ``.../primary`` and ``.../contamination``."""
    out = {}
    for _, s in sorted(summaries.items()):
        if is_world(s):
            out |= {f"{s['name']}/{m}": v for m, v in sorted(s["metrics"].items())}
            continue
        out |= {f"{s['dir']}/{m}": v for m, v in sorted(s["metrics"].items())}
        out[f"{s['dir']}/primary"] = s["primary"]
        if s.get("decontamination", {}).get("measured"):
            out[f"{s['dir']}/contamination"] = s["decontamination"]["contamination"]
    return out


def write_json(path: pathlib.Path, obj: object) -> None:
    """Write a sorted-key, indented JSON file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, sort_keys=True, indent=2) + "\n", encoding="utf-8")
