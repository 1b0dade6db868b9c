"""Which evaluation specs a recipe runs, and the config of the job importing their data.

Kept out of ``plan.py`` so the plan only wires jobs: ``evaldata_config`` checks every spec id
and dataset name (errors name the recipe key) and pins each imported dataset's digest into the
job config, so a changed data file changes the fingerprints of ``evaldata`` and everything
downstream of it (curate, its checkpoints and their evaluations). A dataset is a JSONL file
(digest: its blake3) or a directory (digest: the payload digest over its files' relative paths
and blake3s, as for artifacts). ``pin_critics`` does the same for the critic models named in
``evaluate.critics`` (``evals/critics.py``): their digests go into every evaluate job's config.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reprolm.codedigest import CODE_ROOT
from reprolm.hashing import hash_file, hash_payload, payload_digest
from reprolm.recipe import RecipeError


def spec_datasets(evaluate: Mapping[str, Any]) -> dict[str, str]:
    """Spec id -> dataset name for the recipe's ``evaluate.specs`` (checked against the
    registry) and the specs of ``evaluate.external`` (checked by reprolm.recipecheck)."""
    from evals.registry import SPECS

    unknown = [s for s in evaluate.get("specs") or [] if s not in SPECS]
    if unknown:
        raise RecipeError(
            f"evaluate.specs: unknown spec id(s) {unknown}; known: {', '.join(sorted(SPECS))}"
        )
    overrides = evaluate.get("spec_data") or {}
    # Responses produced elsewhere (evaluate.external) are scored on their spec's dataset too.
    from reprolm.externalplan import external_specs

    wanted = [*(evaluate.get("specs") or []), *external_specs(evaluate)]
    return {s: overrides.get(s, SPECS[s].task) for s in dict.fromkeys(wanted) if s in SPECS}


def source_path(path: str) -> Path:
    """A recipe data path: absolute, or relative to the repository root."""
    candidate = Path(path)
    return candidate if candidate.is_absolute() else CODE_ROOT / candidate


def dataset_digest(path: Path) -> str:
    """Digest of a dataset: a file's blake3, or a directory's payload digest (every file)."""
    return payload_digest(hash_payload(path)) if path.is_dir() else hash_file(path)


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
        source = source_path(path)
        if not (source.is_file() or source.is_dir()):
            raise RecipeError(
                f"evaldata.files.{name}: {path} is neither a file nor a directory; point it at "
                "your copy of the dataset (absolute, or relative to the repository root)"
            )
        try:
            digests[name] = dataset_digest(source)
        except ValueError as error:  # a symlink inside a directory dataset
            raise RecipeError(f"evaldata.files.{name}: {error}") from None
        check_rows(name, source, sorted(s for s, d in specs.items() if d == name))
    return {**base, "files": used, "specs": specs, "digests": digests}


def check_rows(name: str, source: Path, spec_ids: list[str]) -> None:
    """The dataset's bytes and rows fit its specs (evals/rowschema.py): the plan already reads
    every byte to hash it, so a bad row stops the plan, not the first evaluate job."""
    from evals.rowschema import DatasetError, check_dataset

    try:
        check_dataset(source, spec_ids)
    except DatasetError as error:
        lines = str(error).splitlines()
        raise RecipeError(
            f"evaldata.files.{name} (read by {', '.join(spec_ids)}):\n  " + "\n  ".join(lines)
        ) from None


def pin_critics(evaluate: Mapping[str, Any]) -> dict[str, Any]:
    """The evaluate config with ``critic_digests`` pinned for ``evaluate.critics`` (unchanged,
    and so are the fingerprints, when the recipe names no critic)."""
    critics = evaluate.get("critics") or {}
    if not critics:
        return dict(evaluate)
    digests = {}
    for name, path in sorted(critics.items()):
        source = source_path(path)
        if not (source / "config.json").is_file():
            raise RecipeError(
                f"evaluate.critics.{name}: {path} is not an HF model directory (no config.json); "
                "point it at a local sequence classifier (absolute, or relative to the repository "
                "root)"
            )
        try:
            digests[name] = dataset_digest(source)
        except ValueError as error:  # a symlink inside the directory
            raise RecipeError(f"evaluate.critics.{name}: {error}") from None
    return {**evaluate, "critic_digests": digests}
