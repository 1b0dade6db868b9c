"""Outputs produced elsewhere in a recipe (``evaluate.external``): the jobs that register them.

Each entry ``evaluate.external.<name>: {responses, task, produced_by}`` plans two jobs labelled
``<name>``: ``responses`` (a source artifact: the file or folder copied and hashed, the user's
``produced_by`` record in its config, so in its manifest) and ``score`` (the spec's scorer on
it, against the spec's dataset from the ``evaldata`` job). The plan pins the responses' digest
into the responses job's config, so an edited file changes its fingerprint and the score's.
Every check here names the recipe key and runs before any job starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reprolm.recipe import validate_stage_config

KEY = "evaluate.external"


def entries(recipe: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``evaluate.external`` (empty when unset)."""
    return dict(recipe["evaluate"].get("external") or {})


def check_entry(name: str, entry: Mapping[str, Any]) -> list[str]:
    """Problems of one entry: the responses path exists, the task is a registered spec that
    scores files (its family has a ``score``)."""
    from evals.families import family_of
    from evals.registry import SPECS
    from reprolm.evalplan import source_path

    problems = []
    where = f"{KEY}.{name}"
    path = entry["responses"]
    found = source_path(path) if path.strip() else None
    if found is None or not (found.is_file() or found.is_dir()):
        problems.append(
            f"{where}.responses: {path!r} does not exist; point it at the file (or folder) of "
            "responses the model produced (absolute, or relative to the repository root)"
        )
    task = entry["task"]
    if task not in SPECS:
        problems.append(
            f"{where}.task: {task!r} is not a registered spec id; known: "
            f"{', '.join(sorted(SPECS))} (`reprolm eval list`)"
        )
    elif family_of(SPECS[task]).score is None:
        problems.append(
            f"{where}.task: {task} is log-likelihood based, so a file of responses cannot be "
            "scored on it; pick a generative spec (gsm8k, ifeval, simpletom, ...)"
        )
    return problems


def external_jobs(recipe: Mapping[str, Any], stage: str) -> list[tuple[str, dict[str, Any]]]:
    """(label, config) of the ``responses`` or ``score`` job of every entry, sorted by name."""
    from evals.registry import SPECS
    from reprolm.evalplan import dataset_digest, source_path

    shared = {"seed": recipe["seed"], "threads": recipe["threads"]}
    overrides = recipe["evaluate"].get("spec_data") or {}
    jobs = []
    for name, entry in sorted(entries(recipe).items()):
        if stage == "responses":
            config = {
                "path": entry["responses"],
                "task": entry["task"],
                "produced_by": entry["produced_by"],
                "digest": dataset_digest(source_path(entry["responses"])),
            }
        else:
            task = entry["task"]
            config = {"task": task, "dataset": overrides.get(task, SPECS[task].task)}
        jobs.append((name, validate_stage_config(stage, {**config, **shared})))
    return jobs


def external_specs(evaluate: Mapping[str, Any]) -> list[str]:
    """The spec ids the entries are scored on (their datasets join the evaldata job)."""
    return sorted({entry["task"] for entry in (evaluate.get("external") or {}).values()})
