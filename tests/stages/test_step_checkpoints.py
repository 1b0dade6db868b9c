"""Intermediate pretraining checkpoints: ``pretrain.save_steps`` keeps a step's weights in the
pretrain artifact, ``evaluate.checkpoints: [pretrain@step<N>]`` evaluates them, the table has a
column per step (before the last checkpoint) and the curve draws score vs step. Recipes and
micro artifacts are built here; config/tiny.yaml gains nothing."""

from __future__ import annotations

import json
import pathlib

import pytest

from evals import steps, table
from evals.lmeval import model_digest
from evals.plot import write_curve
from reprolm.hashing import hash_payload
from reprolm.htmlreport.evaltable import curve_svg, page, step_curves
from reprolm.htmlreport.inputs import Artifact, Run
from reprolm.plan import load_plan
from reprolm.recipe import RecipeError
from tests.stages.test_evaluate import evaluate
from tests.stages.test_training import run_stage, stage_config

ROOT = pathlib.Path(__file__).resolve().parents[2]
STEPS_RECIPE = {
    "name": "steps",
    "pretrain": {"steps": 40, "save_steps": [10], "save_every": 20},
    "evaluate": {"checkpoints": ["pretrain@step10", "pretrain@step20", "pretrain", "sft"]},
}


def recipe(**evaluate) -> dict:
    return {**STEPS_RECIPE, "evaluate": {**STEPS_RECIPE["evaluate"], **evaluate}}


def test_a_step_checkpoint_plans_an_evaluate_job_on_the_pretrain_artifact():
    plan = load_plan(recipe())
    assert steps.saved_steps(plan.get("pretrain", "pretrain").config) == [10, 20]
    job = plan.get("evaluate", "pretrain_step10")
    assert job.config["checkpoint"] == "pretrain@step10"
    assert job.inputs["model"] == "pretrain/pretrain"
    labels = [j.label for j in plan.by_stage("evaluate")]
    assert labels == ["pretrain_step10", "pretrain_step20", "pretrain", "sft"]
    assert plan.release.inputs["eval_pretrain_step20"] == "evaluate/pretrain_step20"


def test_the_tiny_recipe_saves_no_step():
    plan = load_plan(ROOT / "config/tiny.yaml")
    config = plan.get("pretrain", "pretrain").config
    assert "save_steps" not in config and "save_every" not in config
    assert steps.saved_steps(config) == []


def test_a_step_that_is_not_saved_is_refused_naming_the_saved_steps():
    with pytest.raises(RecipeError) as caught:
        load_plan(recipe(checkpoints=["pretrain@step15", "pretrain"]))
    message = str(caught.value)
    assert "evaluate.checkpoints[0]: pretrain@step15: pretrain does not save step 15" in message
    assert "saved steps: [10, 20]" in message and "pretrain.save_steps" in message
    unsaved = {"name": "x", "evaluate": {"checkpoints": ["pretrain@step5"]}}
    with pytest.raises(RecipeError, match=r"the pretrain job saves no steps\); add 5 to "):
        load_plan(unsaved)


def test_bad_step_names_and_save_steps_are_refused_naming_the_key():
    with pytest.raises(
        RecipeError, match=r"evaluate\.checkpoints\[0\]: 'pretrain@100' is not a checkpoint"
    ):
        load_plan(recipe(checkpoints=["pretrain@100"]))
    late = {**STEPS_RECIPE, "pretrain": {"steps": 40, "save_steps": [40]}}
    with pytest.raises(RecipeError, match=r"pretrain\.save_steps: \[40\] not below"):
        load_plan(late)


def test_base_model_recipes_have_no_pretraining_step(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text("{}")
    based = {**recipe(), "base_model": {"path": str(base)}}
    with pytest.raises(RecipeError, match=r"evaluate\.checkpoints\[0\]: .*base_model\.path"):
        load_plan(based)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, tokenize_artifact) -> tuple[pathlib.Path, pathlib.Path]:
    """(with steps 4 and 8 saved, without) micro pretrain artifacts of 12 steps."""
    root = tmp_path_factory.mktemp("steps")
    saving, plain = root / "saving", root / "plain"
    inputs = {"tokenize": pathlib.Path(tokenize_artifact)}
    run_stage("pretrain", stage_config("pretrain", save_steps=[4], save_every=8), inputs, saving)
    run_stage("pretrain", stage_config("pretrain"), inputs, plain)
    return saving, plain


@pytest.mark.slow
def test_pretrain_keeps_the_saved_steps_and_the_same_last_model(pretrained):
    saving, plain = pretrained
    files = hash_payload(saving)
    for step in (4, 8):
        assert f"steps/step-{step}/model/model.safetensors" in files
        assert f"steps/step-{step}/model/tokenizer.json" in files
    # Saving steps changes no byte of the rest of the payload.
    rest = {rel: entry for rel, entry in files.items() if not rel.startswith("steps/")}
    assert rest == hash_payload(plain)
    weights = {rel: entry["hash"] for rel, entry in files.items() if rel.endswith("safetensors")}
    assert len(set(weights.values())) == 3  # steps 4, 8 and the last differ


@pytest.mark.slow
def test_the_evaluate_job_of_a_step_reads_that_steps_weights(pretrained, world_artifact, tmp_path):
    saving, _ = pretrained
    _, doc = evaluate(
        tmp_path / "eval", saving, world_artifact, checkpoint="pretrain@step4", tasks=["arith_mc"]
    )
    assert doc["checkpoint"] == "pretrain@step4"
    result = json.loads(next((tmp_path / "eval" / "specs").glob("*/result.json")).read_text())
    assert result["model"]["digest"] == model_digest(saving / "steps/step-4/model")
    assert result["model"]["digest"] != model_digest(saving / "model")
    with pytest.raises(FileNotFoundError, match=r"pretrain@step5: .* did not save that step"):
        evaluate(tmp_path / "e2", saving, world_artifact, checkpoint="pretrain@step5")


def results(value: float, checkpoint: str) -> dict:
    return {"checkpoint": checkpoint, "tasks": {"arith_mc": {"acc": value}}}


def test_the_table_has_a_column_per_step_and_the_curve_its_points(tmp_path):
    evals = {
        "sft": results(0.6, "sft"),
        "pretrain": results(0.5, "pretrain"),
        "pretrain_step8": results(0.4, "pretrain@step8"),
        "pretrain_step4": results(0.25, "pretrain@step4"),
    }
    built = table.build(evals, ["pretrain", "sft", "dpo", "rlvr"])
    assert built["columns"] == ["pretrain_step4", "pretrain_step8", "pretrain", "sft"]
    points = table.curve_points(built, {"pretrain": 12})
    assert points == {"arith_mc (acc)": [(4, 0.25), (8, 0.4), (12, 0.5)]}
    assert table.curve_points(built) == {"arith_mc (acc)": [(4, 0.25), (8, 0.4)]}
    assert table.curve_points(table.build({"sft": evals["sft"]}, ["sft"])) == {}
    first = write_curve(points, tmp_path / "a.png").read_bytes()
    assert first[:8] == b"\x89PNG\r\n\x1a\n"
    assert write_curve(points, tmp_path / "b.png").read_bytes() == first  # same bytes


def test_the_html_report_draws_the_curve_from_the_run(tmp_path):
    pretrain = Artifact(
        tmp_path, {"stage": "pretrain", "label": "pretrain", "config": {"steps": 12}}
    )
    run = Run("steps", [pretrain])
    evals = {
        "pretrain": results(0.5, "pretrain"),
        "pretrain_step4": results(0.25, "pretrain@step4"),
    }
    built = table.build(evals, ["pretrain"])
    assert step_curves(run, built) == {"arith_mc (acc)": [(4, 0.25), (12, 0.5)]}
    svg = curve_svg(step_curves(run, built))
    assert svg.startswith("<svg") and "pretraining step" in svg
    assert svg == curve_svg(step_curves(run, built))
    assert "Score vs pretraining step" in page(run, built)
    no_steps = table.build({"pretrain": evals["pretrain"]}, ["pretrain"])
    assert "Score vs pretraining step" not in page(run, no_steps)
