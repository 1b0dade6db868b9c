"""Spec tasks in the DAG: evaldata import, curate decontaminating against it, evaluate running
the specs with the contamination figure beside each score (micro artifacts, random model)."""

from __future__ import annotations

import json
import pathlib
import shutil

import pytest

from evals import results as eval_results
from evals.sources import read_jsonl
from reprolm.evalplan import evaldata_config
from reprolm.plan import load_plan
from reprolm.recipe import RecipeError, validate_stage_config
from stages.common.job import JobContext, as_inputs
from tests.stages.micro import MICRO_CONFIGS, run_stage, schema_defaults
from tests.stages.test_evaluate import tiny_checkpoint

REPO = pathlib.Path(__file__).resolve().parents[2]

SPECS = ["gsm8k:cot::tulu", "ifeval::tulu", "arc_easy:rc::olmes"]
PLANTED = 1  # GSM8K row whose question is planted in the training data


def evaluate_config(**extra) -> dict:
    base = {"seed": 7, "threads": 1, "limit": 1, "tasks": ["arith_mc"], "spec_limit": 2}
    return validate_stage_config("evaluate", base | {"specs": SPECS} | extra)


@pytest.fixture(scope="module")
def evaldata(tmp_path_factory) -> pathlib.Path:
    config = evaldata_config(schema_defaults("evaldata"), evaluate_config())
    out = tmp_path_factory.mktemp("evaldata") / "artifact"
    run_stage("evaldata", config | {"seed": 0, "threads": 1}, {}, out)
    return out


@pytest.fixture(scope="module")
def planted_curate(tmp_path_factory, world_artifact, evaldata) -> pathlib.Path:
    world = tmp_path_factory.mktemp("world") / "artifact"
    shutil.copytree(world_artifact, world)
    question = read_jsonl(evaldata / "data" / "gsm8k.jsonl")[PLANTED]["question"]
    with open(world / "train" / "pretrain.jsonl", "a", encoding="utf-8") as handle:
        row = {"id": "pretrain-planted-gsm8k", "kind": "sentence", "text": f"Story. {question}"}
        handle.write(json.dumps(row, sort_keys=True) + "\n")
    out = tmp_path_factory.mktemp("curate") / "artifact"
    run_stage("curate", MICRO_CONFIGS["curate"], {"world": world, "evaldata": evaldata}, out)
    (out / "provenance.json").write_text(json.dumps({"digest": "blake3:curate-test"}))
    return out


def test_plan_wires_evaldata_only_when_specs_are_listed():
    with_specs = load_plan({"name": "t", "evaluate": {"specs": SPECS}})
    assert with_specs.get("curate", "curate").inputs == {
        "world": "world/world",
        "evaldata": "evaldata/evaldata",
    }
    evaldata = with_specs.get("evaldata", "evaldata")
    assert set(evaldata.config["files"]) == {"gsm8k", "ifeval", "arc_challenge"}
    assert all(len(d) == 64 for d in evaldata.config["digests"].values())
    assert set(with_specs.get("evaluate", "sft").inputs) == {"model", "world", "evaldata", "curate"}
    without = load_plan({"name": "t", "evaluate": {"specs": []}})
    assert "evaldata/evaldata" not in without.jobs
    assert without.get("curate", "curate").inputs == {"world": "world/world"}
    assert without.get("world", "world").fingerprint == with_specs.get("world", "world").fingerprint


def test_every_default_dataset_has_a_license():
    from stages.evaldata.stage import find_license

    files = schema_defaults("evaldata")["files"]
    missing = []
    for name, path in sorted(files.items()):
        source = REPO / path
        homes = (source, source.parent) if source.is_dir() else (source.parent,)
        if find_license(source, homes) is None:
            missing.append(name)
    assert missing == []


def test_plan_names_bad_spec_ids_and_datasets():
    with pytest.raises(RecipeError, match=r"evaluate.specs: unknown spec id\(s\) \['nope::x'\]"):
        load_plan({"name": "t", "evaluate": {"specs": ["nope::x"]}})
    bad = {
        "name": "t",
        "evaluate": {"specs": ["gsm8k:cot::tulu"], "spec_data": {"gsm8k:cot::tulu": "mine"}},
    }
    with pytest.raises(RecipeError, match=r"evaldata.files: no dataset named \['mine'\]"):
        load_plan(bad)


def test_evaldata_payload_and_changed_file_refused(evaldata, tmp_path):
    index = json.loads((evaldata / "evaldata.json").read_text())
    assert index["gsm8k"]["rows"] == 150 and index["gsm8k"]["specs"] == ["gsm8k:cot::tulu"]
    assert index["arc_challenge"]["specs"] == ["arc_easy:rc::olmes"]
    assert index["ifeval"]["license"] == "licenses/ifeval"
    # A bundled pool in evals/data takes the LICENSE-<prefix> beside it.
    assert index["arc_challenge"]["license"] == "licenses/arc_challenge"
    olmes = (evaldata / "licenses" / "arc_challenge").read_text()
    assert olmes == (REPO / "evals" / "data" / "LICENSE-olmes").read_text()
    config = evaldata_config(schema_defaults("evaldata"), evaluate_config())
    config["digests"]["gsm8k"] = "0" * 64
    with pytest.raises(ValueError, match="changed since the plan"):
        run_stage("evaldata", config | {"seed": 0, "threads": 1}, {}, tmp_path / "x")


def test_curate_flags_a_planted_spec_instance(planted_curate):
    report = json.loads((planted_curate / "decontamination.json").read_text())
    gsm8k = report["spec_sets"]["gsm8k"]
    assert str(PLANTED) in gsm8k["flagged_ids"] and gsm8k["measured"] is True
    assert "pretrain-planted-gsm8k" in report["removed"]["pretrain"]["ids"]
    assert set(report["spec_sets"]) == {"gsm8k", "ifeval", "arc_challenge"}
    assert set(report["eval_sets"]) == {"arith_gen", "arith_mc", "facts_mc", "tom_mc"}


@pytest.mark.slow
def test_evaluate_runs_specs_with_contamination_beside_the_score(
    tmp_path, tokenize_artifact, world_artifact, evaldata, planted_curate
):
    from stages.evaluate.stage import run

    checkpoint = tiny_checkpoint(tokenize_artifact, tmp_path / "checkpoint")
    out = tmp_path / "eval"
    out.mkdir()
    inputs = {"model": checkpoint, "world": world_artifact, "evaldata": evaldata}
    with pytest.raises(ValueError, match=r"input\(s\) \['curate'\] are missing"):
        run(evaluate_config(checkpoint="sft"), as_inputs(inputs), tmp_path / "bad", JobContext())
    inputs = as_inputs(inputs | {"curate": planted_curate})
    metrics = run(evaluate_config(checkpoint="sft"), inputs, out, JobContext())
    results = json.loads((out / "results.json").read_text())
    gsm8k = results["specs"]["gsm8k:cot::tulu"]
    assert gsm8k["decontamination"]["flagged_indices"] == [PLANTED]
    assert gsm8k["decontamination"]["contamination"] == 0.5
    assert gsm8k["decontamination"]["curate_digest"] == "blake3:curate-test"
    assert metrics["specs/gsm8k_cot__tulu/contamination"] == 0.5
    assert metrics["specs/ifeval__tulu/contamination"] == 0.0
    assert "specs/arc_easy_rc__olmes/acc_per_char" in metrics
    for task_id in SPECS:
        assert results["tasks"][task_id] == results["specs"][task_id]["metrics"]
        spec_dir = out / results["specs"][task_id]["dir"]
        assert eval_results.recompute(spec_dir)["problems"] == []
        stored = eval_results.load_result(spec_dir)
        assert stored["decontamination"] == results["specs"][task_id]["decontamination"]
        assert stored["instances"] == 2
    # The recipe's max_gen_toks is the generative specs' budget.
    assert results["specs"]["gsm8k:cot::tulu"]["instances"] == 2
    gen = eval_results.load_result(out / "specs" / "gsm8k_cot__tulu")["harness"]["generation"]
    assert gen["max_gen_toks"] == 32 and gen["max_gen_toks_source"] == "options"
