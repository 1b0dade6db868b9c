"""Responses produced outside the recipe (``evaluate.external``): a ``responses`` source
artifact with the user's provenance, scored by a ``score`` job, walked by ``reprolm audit`` and
shown as an external column of the comparison table. The workspace is a recipe built here; its
three jobs (evaldata, responses, score) run through the runner, no model and no torch."""

from __future__ import annotations

import copy
import importlib
import json
import shutil
from pathlib import Path

import pytest

from evals import compare, table
from evals.collect import load_marked
from reprolm.audit import audit, render
from reprolm.htmlreport.evaltable import table_html
from reprolm.plan import load_plan
from reprolm.recipe import RecipeError
from reprolm.runner import execute
from reprolm.stagetable import reproducibility

ROOT = Path(__file__).resolve().parents[2]
RESPONSES = ROOT / "tests/fixtures/external/gsm8k_responses.jsonl"
GSM8K = ROOT / "tests/fixtures/gsm8k/test_sample.jsonl"
TASK = "gsm8k:cot::tulu"
PRODUCED_BY = {
    "model": "gpt-4o-2024-08-06",
    "provider": "OpenAI API",
    "date": "2024-08-06",
    "generation": {"temperature": 0, "max_tokens": 512},
    "notes": "zero-shot, the spec's CoT prompt",
}


def recipe(**entry) -> dict:
    external = {"responses": str(RESPONSES), "task": TASK, "produced_by": PRODUCED_BY, **entry}
    return {
        "name": "external-test",
        "evaluate": {"specs": [TASK], "external": {"gpt4o": external}},
        "evaldata": {"files": {"gsm8k": str(GSM8K)}},
    }


def run_job(plan, key: str) -> dict:
    job = plan.jobs[key]
    stage = importlib.import_module(f"stages.{job.stage}.stage")
    inputs = {name: Path(path) for name, path in plan.input_dirs(job).items()}
    return execute(
        job.stage, stage.run, job.config, inputs, Path(job.artifact_dir),
        reproducibility=reproducibility(job.stage), uses_torch=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """(root, plan, manifests) of a workspace that scored the fixture's responses."""
    root = tmp_path_factory.mktemp("external")
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    mp.setenv("REPROLM_MLFLOW", "off")
    plan = load_plan(recipe())
    manifests = {
        key: run_job(plan, key) for key in ("evaldata/evaldata", "responses/gpt4o", "score/gpt4o")
    }
    yield root, plan, manifests
    mp.undo()


def test_the_recipe_plans_a_responses_and_a_score_job_per_entry(workspace):
    _, plan, _ = workspace
    responses, score = plan.get("responses", "gpt4o"), plan.get("score", "gpt4o")
    assert responses.inputs == {}
    assert score.inputs == {"responses": "responses/gpt4o", "evaldata": "evaldata/evaldata"}
    assert TASK in plan.get("evaldata", "evaldata").config["specs"]
    assert "external" not in plan.get("evaluate", "sft").config  # no rerun of the checkpoints
    # The release never reads them: its stage order ends with itself.
    assert plan.release.config["stages"][-1] == "release"


def test_the_tiny_recipe_plans_no_external_job():
    plan = load_plan(ROOT / "config/tiny.yaml")
    assert not plan.by_stage("responses") and not plan.by_stage("score")
    assert "responses" not in plan.release.config["stages"]


def test_manifests_record_the_user_provenance_and_the_score_inputs(workspace):
    _, _, manifests = workspace
    responses, score = manifests["responses/gpt4o"], manifests["score/gpt4o"]
    assert responses["config"]["produced_by"] == PRODUCED_BY
    assert responses["config"]["task"] == TASK and responses["inputs"] == {}
    assert "responses/responses.jsonl" in responses["files"]
    assert responses["files"]["responses/responses.jsonl"]["size"] == RESPONSES.stat().st_size
    assert set(score["inputs"]) == {"responses", "evaldata"}
    assert score["inputs"]["responses"]["digest"] == responses["digest"]
    # Two of the four hand-written responses end in the gold number.
    assert score["metrics"]["gsm8k_cot__tulu/exact_match"] == 0.5


def test_audit_of_a_score_reaches_the_user_provenance_spec_and_dataset(workspace):
    root, plan, manifests = workspace
    report = audit(Path(plan.get("score", "gpt4o").artifact_dir), root=root)
    assert not report.problems and not report.missing, report.problems
    nodes = {node.node.stage: node for node in report.nodes}
    assert set(nodes) == {"score", "responses", "evaldata"}
    assert nodes["responses"].checks["origin"]["status"] == "ok"
    assert nodes["responses"].as_dict()["origin"]["produced_by"] == PRODUCED_BY
    origin = nodes["score"].as_dict()["origin"]
    result = json.loads(
        (root / plan.get("score", "gpt4o").artifact_dir / "external.json").read_text()
    )
    assert origin["spec_hash"] == result["spec_hash"] and origin["task_id"] == TASK
    evaldata = manifests["evaldata/evaldata"]["config"]["digests"]["gsm8k"]
    assert origin["dataset"] == "gsm8k" and origin["dataset_blake3"] == evaldata
    text = render(report)
    assert "produced by gpt-4o-2024-08-06 (OpenAI API, 2024-08-06" in text
    assert f"{TASK} spec {result['spec_hash'][:8]} on dataset gsm8k" in text


def test_a_provenance_record_edited_after_the_job_breaks_the_origin(workspace, tmp_path):
    root, plan, _ = workspace
    shutil.copytree(root / "artifacts", tmp_path / "artifacts")
    responses = tmp_path / plan.get("responses", "gpt4o").artifact_dir
    manifest = json.loads((responses / "provenance.json").read_text())
    manifest["config"]["produced_by"] = {**PRODUCED_BY, "model": "someone-else"}
    (responses / "provenance.json").write_text(json.dumps(manifest))
    report = audit(tmp_path / plan.get("score", "gpt4o").artifact_dir, root=tmp_path)
    node = next(n for n in report.nodes if n.node.stage == "responses")
    assert node.checks["origin"]["status"] == "broken"
    assert any("produced_by differs" in p for p in report.problems)


def test_the_comparison_table_shows_the_score_as_an_external_column(workspace):
    root, plan, _ = workspace
    score_dir = root / plan.get("score", "gpt4o").artifact_dir
    built = table.build({}, ["pretrain", "sft"], external={"gpt4o": score_dir})
    assert built["external"] == ["gpt4o"] and built["columns"] == ["gpt4o"]
    row = next(r for r in built["rows"] if r["task"] == TASK)
    assert row["cells"]["gpt4o"]["value"] == 0.5
    assert "| gpt4o (external) |" in compare.markdown(built)
    assert "<th>gpt4o (external)</th>" in table_html(built)
    entries, external = load_marked([score_dir])  # reprolm eval compare's reading
    assert external == ["gpt4o"] and entries[0].value == 0.5
    assert "external" not in compare.build(entries)  # only when asked: tables stay as they were


def test_an_external_name_equal_to_a_checkpoint_is_refused_by_the_table(workspace):
    root, plan, _ = workspace
    score_dir = root / plan.get("score", "gpt4o").artifact_dir
    with pytest.raises(ValueError, match=r"external column\(s\) \['sft'\]"):
        table.build({"sft": {"checkpoint": "sft", "tasks": {}}}, ["sft"], {"sft": score_dir})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"responses": "/nonexistent/responses.jsonl"}, r"evaluate\.external\.gpt4o\.responses: "
         r"'/nonexistent/responses.jsonl' does not exist"),
        ({"task": "gsm8k:cot::nope"}, r"evaluate\.external\.gpt4o\.task: 'gsm8k:cot::nope' is "
         r"not a registered spec id"),
        ({"task": "arc_easy:rc::olmes"}, r"evaluate\.external\.gpt4o\.task: arc_easy:rc::olmes "
         r"is log-likelihood based"),
    ],
)  # fmt: skip
def test_bad_entries_are_refused_naming_the_key(change, message):
    with pytest.raises(RecipeError, match=message):
        load_plan(recipe(**change))


@pytest.mark.parametrize("field", ["model", "provider", "date"])
def test_a_missing_required_produced_by_field_is_refused_naming_it(field):
    produced_by = {k: v for k, v in PRODUCED_BY.items() if k != field}
    with pytest.raises(RecipeError, match=rf"evaluate\.external\.gpt4o\.produced_by: '{field}' is"):
        load_plan(recipe(produced_by=produced_by))


def test_other_bad_produced_by_and_names_are_refused():
    with pytest.raises(RecipeError, match=r"produced_by\.date: 'last week' is not a date"):
        load_plan(recipe(produced_by={**PRODUCED_BY, "date": "last week"}))
    with pytest.raises(RecipeError, match=r"produced_by\.secret: unknown key"):
        load_plan(recipe(produced_by={**PRODUCED_BY, "secret": "x"}))
    clash = recipe()
    clash["evaluate"]["external"] = {"sft": clash["evaluate"]["external"]["gpt4o"]}
    with pytest.raises(RecipeError, match=r"evaluate\.external\.sft: named like a checkpoint"):
        load_plan(clash)
    no_specs = copy.deepcopy(recipe())
    no_specs["evaluate"]["specs"] = []
    with pytest.raises(RecipeError, match=r"evaluate\.external: scoring needs the evaldata job"):
        load_plan(no_specs)
