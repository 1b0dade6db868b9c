"""Recipe validation: defaults filled, every bad key path named, before any job starts."""

import shutil
from pathlib import Path

import pytest
import yaml

from reprolm.recipe import STAGES, RecipeError, load_recipe, stage_config, validate_stage_config
from reprolm.stagetable import DEFAULT_CHECKPOINTS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def schema_dir(tmp_path):
    """The real top-level schema plus a small, known schema for every stage."""
    shutil.copy(ROOT / "config/schema/recipe.schema.yaml", tmp_path)
    for stage in STAGES:
        schema = {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "steps": {"type": "integer", "default": 10},
                "optim": {
                    "type": "object",
                    "additionalProperties": False,
                    "default": {},
                    "properties": {"lr": {"type": "number", "default": 0.001}},
                },
            },
        }
        (tmp_path / f"{stage}.schema.yaml").write_text(yaml.safe_dump(schema))
    return tmp_path


def test_defaults_fill_nested_blocks(schema_dir):
    recipe = load_recipe({"name": "t", "sft": {"optim": {}}}, schema_dir)
    assert recipe["seed"] == 1234 and recipe["threads"] == 2
    assert recipe["sft"] == {"steps": 10, "optim": {"lr": 0.001}}
    assert recipe["dpo"] == {"steps": 10, "optim": {"lr": 0.001}}
    # Every checkpoint but the opt-in stages' (midtrain, soup: listed when wanted).
    assert recipe["evaluate"]["checkpoints"] == list(DEFAULT_CHECKPOINTS)


def test_stage_config_inherits_seed_and_threads_unless_overridden(schema_dir):
    recipe = load_recipe({"name": "t", "seed": 7, "dpo": {"seed": 9, "threads": 1}}, schema_dir)
    assert stage_config(recipe, "sft")["seed"] == 7
    assert stage_config(recipe, "dpo")["seed"] == 9
    assert stage_config(recipe, "dpo")["threads"] == 1


def test_every_bad_key_path_is_named(schema_dir):
    bad = {
        "name": "t",
        "sft": {"optim": {"lr": "fast", "momentum": 0.9}, "stepz": 3},
        "bogus": 1,
        "threads": 0,
    }
    with pytest.raises(RecipeError) as error:
        load_recipe(bad, schema_dir)
    message = str(error.value)
    assert "sft.optim.lr: 'fast' is not of type 'number'" in message
    assert "sft.optim.momentum: unknown key" in message
    assert "sft.stepz: unknown key (allowed here: optim, seed, steps, threads)" in message
    assert "bogus: unknown key" in message
    assert "threads:" in message
    assert "Fix these keys" in message


def test_missing_name_and_bad_file_are_reported(schema_dir, tmp_path):
    with pytest.raises(RecipeError, match="'name' is a required property"):
        load_recipe({"sft": {}}, schema_dir)
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("name: t\nsft: [unclosed\n")
    with pytest.raises(RecipeError, match=r"bad\.yaml: not valid YAML"):
        load_recipe(bad_yaml, schema_dir)
    with pytest.raises(RecipeError, match="file not found"):
        load_recipe(tmp_path / "missing.yaml", schema_dir)


def test_evaluated_checkpoints_are_checked(schema_dir):
    with pytest.raises(RecipeError, match=r"evaluate.checkpoints\[1\]"):
        load_recipe({"name": "t", "evaluate": {"checkpoints": ["sft", "ppo"]}}, schema_dir)


def test_stage_config_validation_for_hand_started_jobs():
    with pytest.raises(RecipeError, match="world config"):
        validate_stage_config("world", {"seed": "x", "threads": 1})
