"""Which evaluation specs a recipe runs, and the config of the job importing their data.

Kept out of ``plan.py`` so the plan only wires jobs: ``evaldata_config`` checks every spec id
and dataset name (errors name the recipe key) and pins each imported file's blake3 into the
job config, so a changed data file changes the fingerprints of ``evaldata`` and everything
downstream of it (curate, its checkpoints and their evaluations).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reprolm.codedigest import CODE_ROOT
from reprolm.hashing import hash_file
from reprolm.recipe import RecipeError


def spec_datasets(evaluate: Mapping[str, Any]) -> dict[str, str]:
    """Spec id -> dataset name for the recipe's ``evaluate.specs`` (checked against the
    registry)."""
    from reprolm.evalspec.registry import SPECS

    unknown = [s for s in evaluate.get("specs") or [] if s not in SPECS]
    if unknown:
        raise RecipeError(
            f"evaluate.specs: unknown spec id(s) {unknown}; known: {', '.join(sorted(SPECS))}"
        )
    overrides = evaluate.get("spec_data") or {}
    return {s: overrides.get(s, SPECS[s].task) for s in evaluate.get("specs") or []}


def source_path(path: str) -> Path:
    """A recipe data path: absolute, or relative to the repository root."""
    candidate = Path(path)
    return candidate if candidate.is_absolute() else CODE_ROOT / candidate


def evaldata_config(base: Mapping[str, Any], evaluate: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``evaldata`` job's config (None: the recipe runs no spec, so there is no such job)."""
    specs = spec_datasets(evaluate)
    if not specs:
        return None
    files = base["files"]
    missing = sorted({name for name in specs.values() if name not in files})
    if missing:
        raise RecipeError(
            f"evaldata.files: no dataset named {missing} (used by evaluate.specs / "
            f"evaluate.spec_data); known: {', '.join(sorted(files))}"
        )
    used = {name: files[name] for name in sorted(set(specs.values()))}
    digests = {}
    for name, path in used.items():
        if not source_path(path).is_file():
            raise RecipeError(f"evaldata.files.{name}: {path} is not a file")
        digests[name] = hash_file(source_path(path))
    return {**base, "files": used, "specs": specs, "digests": digests}
