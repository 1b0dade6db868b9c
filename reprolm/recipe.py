"""Recipes: load, fill defaults, validate against the composed schema, name every bad key.

The recipe schema is composed from ``config/schema/recipe.schema.yaml`` (top-level keys) and one
``config/schema/<stage>.schema.yaml`` per stage block, so a stage's options sit beside its name.
Errors name the key path (``sft.learning_rate``), what is wrong and what would be accepted, and
are raised before any job starts. A recipe file is read by ``reprolm.recipeyaml`` (strict UTF-8,
no duplicate keys, bounded aliases); values that only make sense together are checked by
``reprolm.recipecheck``. A map-valued setting whose default is a map (``evaldata.files``,
``evaluate.spec_data``) is merged with that default: a recipe's entries add to or replace the
default's, and an entry set to null drops it.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from reprolm import stagetable
from reprolm.recipeyaml import MAX_NODES, RecipeError, key_path, load_yaml_file
from reprolm.stagetable import CHECKPOINT_STAGES, DEFAULT_CHECKPOINTS, STAGE_NAMES

__all__ = ["RecipeError", "load_recipe", "load_recipe_files", "stage_config", "validate"]

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "config" / "schema"
STAGES = STAGE_NAMES  # every stage, in pipeline order (reprolm/stagetable.py)
# Keys every stage block accepts; the recipe's top-level values are their defaults.
SHARED_STAGE_KEYS = ("seed", "threads")
# A pretraining step (`pretrain@step100`) besides the checkpoint stages: evals/steps.py.
STEP_CHECKPOINT = {
    "type": "string",
    "pattern": "^pretrain@step[1-9][0-9]*$",
    "hint": (
        "is not a checkpoint: name a stage (" + ", ".join(CHECKPOINT_STAGES) + ") or a saved "
        "pretraining step as pretrain@step<N>"
    ),
}
CHECKPOINT_NAME = {"anyOf": [{"enum": list(CHECKPOINT_STAGES)}, STEP_CHECKPOINT]}
EVALUATED_CHECKPOINTS_SCHEMA = {
    "type": "array",
    "items": CHECKPOINT_NAME,
    "uniqueItems": True,
    "minItems": 1,
    # Not the opt-in stages (midtrain, soup): list them to evaluate them.
    "default": list(DEFAULT_CHECKPOINTS),
    "description": "Checkpoints to evaluate (one evaluate job each).",
}


def _load_yaml(path: Path) -> Any:
    """A schema file (the project's own: plain safe YAML), read once per content version."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise RecipeError(f"{path}: file not found") from None
    return copy.deepcopy(_read_schema(path, stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=64)
def _read_schema(path: Path, mtime_ns: int, size: int) -> Any:
    del mtime_ns, size  # the cache key: an edited schema is read again
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.safe_load(handle)
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
                **copy.deepcopy(CHECKPOINT_NAME),
                "description": "The checkpoint's stage, or pretrain@step<N> (set by the plan).",
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


def _fill_defaults(value: Any, schema: Mapping[str, Any], merge_maps: bool = False) -> Any:
    """Fill missing object properties from their schema defaults, recursively.

    ``merge_maps`` (a whole recipe): a given map whose schema default is a map of entries (no
    fixed properties) is laid over that default, and its null entries are dropped.
    """
    if schema.get("type") == "object" and isinstance(value, dict):
        for key, sub in schema.get("properties", {}).items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            elif merge_maps and _is_map(sub) and isinstance(value.get(key), dict):
                merged = {**copy.deepcopy(sub["default"]), **value[key]}
                value[key] = {name: entry for name, entry in merged.items() if entry is not None}
            if key in value:
                value[key] = _fill_defaults(value[key], sub, merge_maps)
    return value


def _is_map(schema: Mapping[str, Any]) -> bool:
    """A setting of named entries (``evaldata.files``) with a default of some entries."""
    default = schema.get("default")
    return (
        schema.get("type") == "object"
        and "properties" not in schema
        and isinstance(schema.get("additionalProperties"), dict)
        and isinstance(default, dict)
        and bool(default)
    )


JSON_SCALARS = (str, bool, int, float, type(None))
NON_JSON_KINDS = {"date": "a date", "datetime": "a date and time", "bytes": "binary data"}


def check_values(value: Any, source: str) -> None:
    """Refuse what no recipe key takes: non-string keys, NaN/infinity, non-JSON values (dates,
    binary, sets), naming the key path. Iterative, so any depth is fine."""
    stack: list[tuple[Any, list[Any]]] = [(value, [])]
    seen = 0
    while stack:
        item, parts = stack.pop()
        seen += 1
        if seen > MAX_NODES:  # a mapping built with shared parts (a bomb made in Python)
            raise RecipeError(f"{source}: more than {MAX_NODES} values; a recipe is small")
        if isinstance(item, Mapping):
            for key, sub in item.items():
                if not isinstance(key, str):
                    raise RecipeError(
                        f"{source}: {key_path(parts)}: the key {key!r} is a "
                        f"{type(key).__name__}, not a name; quote it in the recipe"
                    )
                stack.append((sub, [*parts, key]))
        elif isinstance(item, list | tuple):
            stack.extend((sub, [*parts, index]) for index, sub in enumerate(item))
        elif isinstance(item, float) and not math.isfinite(item):
            raise RecipeError(
                f"{source}: {key_path(parts)}: {item!r} is not a finite number; give a "
                "number such as 1e-3"
            )
        elif not isinstance(item, JSON_SCALARS):
            kind = NON_JSON_KINDS.get(type(item).__name__, f"a {type(item).__name__}")
            raise RecipeError(
                f"{source}: {key_path(parts)}: {item!r} is {kind}; recipe values are strings, "
                'numbers, booleans, null, lists and maps (quote it: "...")'
            )


def _describe(error: Any) -> str:
    import jsonschema  # deferred: only needed when a recipe is loaded

    path = list(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unexpected = sorted(set(error.instance) - set(allowed))
        return "; ".join(
            f"{key_path([*path, key])}: unknown key (allowed here: {', '.join(allowed)})"
            for key in unexpected
        )
    if error.validator == "type":
        return f"{key_path(path)}: {error.instance!r} is not of type {error.validator_value!r}"
    if error.validator == "pattern" and "hint" in error.schema:
        # A schema's `hint` says how to fix a value that does not match (e.g. an image by digest).
        return f"{key_path(path)}: {error.instance!r} {error.schema['hint'].strip()}"
    if error.validator == "anyOf":  # a checkpoint name: the hint of the alternative with one
        hints = [sub["hint"] for sub in error.validator_value if "hint" in sub]
        if hints:
            return f"{key_path(path)}: {error.instance!r} {hints[0].strip()}"
    if error.validator == "required":
        return f"{key_path(path)}: {error.message}"
    if error.validator in ("maximum", "minimum", "exclusiveMaximum", "exclusiveMinimum"):
        bound = {"maximum": "at most", "minimum": "at least"}.get(error.validator)
        bound = bound or ("below" if error.validator == "exclusiveMaximum" else "above")
        return f"{key_path(path)}: {error.message}; give a value {bound} {error.validator_value}"
    del jsonschema
    return f"{key_path(path)}: {error.message}"


def validate(
    value: Mapping[str, Any], schema: Mapping[str, Any], source: str, merge_maps: bool = False
) -> dict[str, Any]:
    """Return ``value`` with defaults filled; raise RecipeError listing every invalid key path."""
    import jsonschema

    check_values(value, source)
    filled = _fill_defaults(copy.deepcopy(dict(value)), schema, merge_maps)
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
    from reprolm.recipecheck import check_recipe

    source = str(config) if isinstance(config, Path) else (source or "recipe")
    value = load_yaml_file(config) if isinstance(config, Path) else config
    if not isinstance(value, Mapping):
        raise RecipeError(f"{source}: a recipe is a mapping of keys, got {type(value).__name__}")
    recipe = validate(value, recipe_schema(schema_dir), source, merge_maps=True)
    if schema_dir == SCHEMA_DIR:  # the cross-field checks know the real stages' keys
        check_recipe(recipe, source)
    return recipe


def load_recipe_files(
    paths: Sequence[Path], overrides: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], str]:
    """(merged recipe, source) of recipe files read in order, each through the checked
    loader, merged key by key as Snakemake merges ``--configfile`` files, then ``overrides``
    (Snakemake's ``--config``); ``source`` names the files."""
    merged: dict[str, Any] = {}
    for path in paths:
        value = load_yaml_file(Path(path))
        if value is None:
            continue
        if not isinstance(value, Mapping):
            raise RecipeError(f"{path}: a recipe is a mapping of keys, got {type(value).__name__}")
        _merge_into(merged, value)
    _merge_into(merged, overrides or {})
    return merged, " + ".join(map(str, paths))


def _merge_into(target: dict[str, Any], update: Mapping[str, Any]) -> None:
    """Maps merged key by key, any other value replaced (Snakemake's update_config)."""
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge_into(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def stage_config(recipe: Mapping[str, Any], stage: str) -> dict[str, Any]:
    """A stage's resolved config: its block plus the recipe-wide seed and threads."""
    block = copy.deepcopy(dict(recipe[stage]))
    for key in SHARED_STAGE_KEYS:
        block.setdefault(key, recipe[key])
    return block


def validate_stage_config(stage: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """Validate one job's config (used by the runner for hand-started jobs)."""
    return validate(config, stage_schema(stage), f"{stage} config")
