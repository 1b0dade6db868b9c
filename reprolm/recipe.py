"""Recipes: load, fill defaults, validate against the composed schema, name every bad key.

The recipe schema is composed from ``config/schema/recipe.schema.yaml`` (top-level keys) and one
``config/schema/<stage>.schema.yaml`` per stage block, so a stage's options sit beside its name.
Errors name the key path (``sft.learning_rate``), what is wrong and what would be accepted, and
are raised before any job starts.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from reprolm import stagetable
from reprolm.stagetable import CHECKPOINT_STAGES, STAGE_NAMES

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "config" / "schema"
STAGES = STAGE_NAMES  # every stage, in pipeline order (reprolm/stagetable.py)
# Keys every stage block accepts; the recipe's top-level values are their defaults.
SHARED_STAGE_KEYS = ("seed", "threads")
EVALUATED_CHECKPOINTS_SCHEMA = {
    "type": "array",
    "items": {"enum": list(CHECKPOINT_STAGES)},
    "uniqueItems": True,
    "minItems": 1,
    "default": list(CHECKPOINT_STAGES),
    "description": "Checkpoints to evaluate (one evaluate job each).",
}


class RecipeError(ValueError):
    """A recipe (or one stage's config) is invalid; the message names every bad key path."""


def _load_yaml(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except FileNotFoundError:
        raise RecipeError(f"{path}: file not found") from None
    except yaml.YAMLError as error:
        raise RecipeError(f"{path}: not valid YAML: {error}") from None


def stage_schema(stage: str, schema_dir: Path = SCHEMA_DIR) -> dict[str, Any]:
    """The JSON schema of one stage's config, with the shared keys (seed, threads) added."""
    top = _load_yaml(schema_dir / "recipe.schema.yaml")
    schema = copy.deepcopy(_load_yaml(schema_dir / f"{stage}.schema.yaml"))
    properties = schema.setdefault("properties", {})
    entry = stagetable.stage(stage)
    if entry.config_from is not None:  # curate_shard: the curate block's keys (less the ones
        # it omits) plus its own, which the plan sets
        base = stage_schema(entry.config_from, schema_dir)["properties"]
        omitted = set(entry.config_omits)
        properties = schema["properties"] = {
            **{key: value for key, value in base.items() if key not in omitted},
            **properties,
        }
    for key in SHARED_STAGE_KEYS:
        shared = {k: v for k, v in top["properties"][key].items() if k != "default"}
        properties.setdefault(key, shared)
    if stagetable.stage(stage).per_checkpoint:
        properties.setdefault(
            "checkpoint",
            {
                "enum": list(CHECKPOINT_STAGES),
                "description": "The checkpoint's stage (set by the plan).",
            },
        )
    return schema


def recipe_schema(schema_dir: Path = SCHEMA_DIR) -> dict[str, Any]:
    """The whole recipe's schema: top-level keys plus one block per stage."""
    schema = copy.deepcopy(_load_yaml(schema_dir / "recipe.schema.yaml"))
    _add_stage_keys(schema)
    for name in STAGES:
        if not stagetable.has_recipe_block(name):  # source, curate_shard
            continue
        block = stage_schema(name, schema_dir)
        block.setdefault("default", {})
        # Keys the plan sets (evaluate's `checkpoint`, release's order) are no recipe keys.
        entry = stagetable.stage(name)
        for key in entry.plan_keys:
            block["properties"].pop(key, None)
        required = [key for key in block.pop("required", []) if key not in entry.plan_keys]
        if required:
            block["required"] = required
        if entry.per_checkpoint:
            # One evaluate job per listed checkpoint: the recipe lists them, each job's config
            # names its own (``checkpoint``), which the plan sets.
            block["properties"]["checkpoints"] = EVALUATED_CHECKPOINTS_SCHEMA
        schema["properties"][name] = block
    return schema


def _add_stage_keys(schema: dict[str, Any]) -> None:
    """``containers``: one key per image family and per stage; ``resources``: one per stage
    (training stages, started by reprolm.launch, take the launch keys too)."""
    defs = schema.pop("$defs")
    keys = (*stagetable.families("image"), *STAGES)
    containers = schema["properties"]["containers"]
    containers["properties"] = {key: copy.deepcopy(defs["image_reference"]) for key in keys}
    resources = schema["properties"]["resources"]
    resources["properties"] = {
        name: copy.deepcopy(
            defs["training_resources" if name in stagetable.TRAINING_STAGES else "stage_resources"]
        )
        for name in STAGES
    }


def _fill_defaults(value: Any, schema: Mapping[str, Any]) -> Any:
    """Fill missing object properties from their schema defaults, recursively."""
    if schema.get("type") == "object" and isinstance(value, dict):
        for key, sub in schema.get("properties", {}).items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                value[key] = _fill_defaults(value[key], sub)
    return value


def _key_path(parts: list[Any]) -> str:
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "<top level>"


def _describe(error: Any) -> str:
    import jsonschema  # deferred: only needed when a recipe is loaded

    path = list(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unexpected = sorted(set(error.instance) - set(allowed))
        return "; ".join(
            f"{_key_path([*path, key])}: unknown key (allowed here: {', '.join(allowed)})"
            for key in unexpected
        )
    if error.validator == "type":
        return f"{_key_path(path)}: {error.instance!r} is not of type {error.validator_value!r}"
    if error.validator == "pattern" and "hint" in error.schema:
        # A schema's `hint` says how to fix a value that does not match (e.g. an image by digest).
        return f"{_key_path(path)}: {error.instance!r} {error.schema['hint'].strip()}"
    if error.validator == "required":
        return f"{_key_path(path)}: {error.message}"
    del jsonschema
    return f"{_key_path(path)}: {error.message}"


def validate(value: Mapping[str, Any], schema: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Return ``value`` with defaults filled; raise RecipeError listing every invalid key path."""
    import jsonschema

    filled = _fill_defaults(copy.deepcopy(dict(value)), schema)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(filled), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = "\n".join(f"  - {_describe(error)}" for error in errors)
        raise RecipeError(f"{source}: invalid recipe:\n{lines}\nFix these keys and run again.")
    return filled


def load_recipe(
    config: Mapping[str, Any] | Path, schema_dir: Path = SCHEMA_DIR, source: str | None = None
) -> dict[str, Any]:
    """Validate a recipe (a mapping, e.g. Snakemake's ``config``, or a YAML path); ``source``
    names where a mapping came from in error messages."""
    source = str(config) if isinstance(config, Path) else (source or "recipe")
    value = _load_yaml(config) if isinstance(config, Path) else config
    if not isinstance(value, Mapping):
        raise RecipeError(f"{source}: a recipe is a mapping of keys, got {type(value).__name__}")
    return validate(value, recipe_schema(schema_dir), source)


def stage_config(recipe: Mapping[str, Any], stage: str) -> dict[str, Any]:
    """A stage's resolved config: its block plus the recipe-wide seed and threads."""
    block = copy.deepcopy(dict(recipe[stage]))
    for key in SHARED_STAGE_KEYS:
        block.setdefault(key, recipe[key])
    return block


def validate_stage_config(stage: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """Validate one job's config (used by the runner for hand-started jobs)."""
    return validate(config, stage_schema(stage), f"{stage} config")
