"""Every issue-6 task family in the workflow's evaluate stage: directory datasets imported by
evaldata with a pinned digest, each spec's result carrying its spec hash, ``reprolm eval
recompute`` reproducing it exactly, and ``reprolm eval spec --data`` giving the same hash
(micro artifacts, random model: the scores mean nothing, the plumbing is what is tested)."""

from __future__ import annotations

import json
import pathlib
import shutil

import pytest

from reprolm.cli import main
from reprolm.evalplan import evaldata_config
from reprolm.recipe import RecipeError, validate_stage_config
from stages.common.job import JobContext, as_inputs
from tests.evals import wvb_data
from tests.stages.micro import MICRO_CONFIGS, run_stage, schema_defaults
from tests.stages.test_evaluate import tiny_checkpoint

SPECS = [
    "simpletom::paper",
    "simpletom:cot::paper",
    "simpletom::remind",
    "simpletom:cot::tom",
    "ds_critique::dscb",
    "complement_coercion::surprisal",
    "worldvaluesbench::probe",
    "worldvaluesbench:cot::probe",
    "delta_rot::generate",
    "delta_rot::classify",
    "proc2pddl::no_text",
    "proc2pddl::with_text",
]
DIRECTORIES = {"worldvaluesbench", "proc2pddl"}


def evaluate_config(**extra) -> dict:
    base = {"seed": 7, "threads": 1, "limit": 1, "tasks": ["arith_mc"], "spec_limit": 1}
    return validate_stage_config("evaluate", base | {"specs": SPECS, "max_gen_toks": 8} | extra)


def files_with_wvb(root: pathlib.Path) -> dict:
    """The schema's default datasets plus generated WorldValuesBench data (no default exists)."""
    base = schema_defaults("evaldata")
    wvb = wvb_data.write(root / "WorldValuesBench")
    return base | {"files": base["files"] | {"worldvaluesbench": str(wvb)}}


@pytest.fixture(scope="module")
def evaldata(tmp_path_factory) -> pathlib.Path:
    base = files_with_wvb(tmp_path_factory.mktemp("wvb"))
    config = evaldata_config(base, evaluate_config())
    out = tmp_path_factory.mktemp("evaldata") / "artifact"
    run_stage("evaldata", config | {"seed": 0, "threads": 1}, {}, out)
    return out


def test_directory_datasets_are_pinned_and_imported(evaldata, tmp_path):
    index = json.loads((evaldata / "evaldata.json").read_text())
    assert set(index) == {
        "simpletom", "ds_critique", "complement_coercion", "worldvaluesbench", "delta_rot",
        "proc2pddl",
    }  # fmt: skip
    for name in DIRECTORIES:
        assert index[name]["file"] == f"data/{name}/" and index[name]["files"] >= 4
        assert (evaldata / "data" / name).is_dir() and "rows" not in index[name]
    assert index["proc2pddl"]["license"] == "licenses/proc2pddl"
    assert (evaldata / "data" / "proc2pddl" / "gold_plans").is_dir()
    assert index["delta_rot"]["rows"] == 16 and index["simpletom"]["rows"] == 6
    # A file changed inside a directory dataset after the plan is refused.
    source = tmp_path / "proc2pddl"
    shutil.copytree("data/eval/proc2pddl", source)
    base = schema_defaults("evaldata")
    base["files"]["proc2pddl"] = str(source)
    config = evaldata_config(base, {"specs": ["proc2pddl::no_text"]})
    assert config["digests"]["proc2pddl"] == index["proc2pddl"]["blake3"]
    (source / "gold_plans" / "114540181_problem-escape.txt").write_text("(noop)\n")
    with pytest.raises(ValueError, match=r"evaldata.files.proc2pddl: .* changed since the plan"):
        run_stage("evaldata", config | {"seed": 0, "threads": 1}, {}, tmp_path / "x")
    # A missing path is named by its recipe key, with the fix.
    base["files"]["proc2pddl"] = str(tmp_path / "nowhere")
    with pytest.raises(RecipeError, match=r"evaldata.files.proc2pddl: .* neither a file nor"):
        evaldata_config(base, {"specs": ["proc2pddl::no_text"]})


def test_file_dataset_digest_is_the_file_blake3():
    from reprolm.hashing import hash_file

    config = evaldata_config(schema_defaults("evaldata"), {"specs": ["gsm8k:cot::tulu"]})
    assert config["digests"]["gsm8k"] == hash_file(
        pathlib.Path("data/eval/gsm8k/test_sample.jsonl")
    )


@pytest.mark.slow
def test_every_task_runs_in_the_evaluate_stage_and_recomputes(
    tmp_path, tokenize_artifact, world_artifact, evaldata, capsys
):
    from stages.evaluate.stage import run

    curate = tmp_path / "curate"
    run_stage(
        "curate", MICRO_CONFIGS["curate"], {"world": world_artifact, "evaldata": evaldata}, curate
    )
    checkpoint = tiny_checkpoint(tokenize_artifact, tmp_path / "checkpoint")
    out = tmp_path / "eval"
    out.mkdir()
    inputs = {"model": checkpoint, "world": world_artifact, "evaldata": evaldata, "curate": curate}
    run(evaluate_config(checkpoint="sft"), as_inputs(inputs), out, JobContext())
    results = json.loads((out / "results.json").read_text())
    capsys.readouterr()  # the stage's own output
    assert {t for t, s in results["specs"].items() if s["kind"] != "world"} == set(SPECS)
    for task_id in SPECS:
        summary = results["specs"][task_id]
        assert len(summary["spec_hash"]) == 64 and summary["instances"] >= 1
        decon = summary["decontamination"]  # every family has a texts hook: all measured
        assert decon["measured"] is True and 0.0 <= decon["contamination"] <= 1.0, task_id
        assert decon["instances"] >= 1, task_id
        with pytest.raises(SystemExit) as done:
            main(["eval", "recompute", str(out / summary["dir"]), "--json"])
        report = json.loads(capsys.readouterr().out)
        assert done.value.code == 0 and report["problems"] == [], task_id
        assert report["recomputed"] == summary["metrics"]
        # `reprolm eval spec --data` resolves a dataset (file or directory) to the same hash.
        dataset = json.loads((evaldata / "evaldata.json").read_text())
        name = next(n for n, e in dataset.items() if task_id in e["specs"])
        with pytest.raises(SystemExit) as done:
            main(
                ["eval", "spec", task_id, "--data", str(evaldata / dataset[name]["file"]), "--json"]
            )
        resolved = json.loads(capsys.readouterr().out)
        stored = json.loads((out / summary["dir"] / "result.json").read_text())["spec"]
        assert resolved["spec"]["dataset_digest"] == stored["dataset_digest"], task_id
        if task_id.startswith("proc2pddl"):  # its resolved spec lists the (limited) domains run
            assert stored["instances"] == resolved["spec"]["instances"][:1]
        elif "generation" in stored:  # a generative run's settings join its spec hash
            from evals.spec import spec_hash

            without = {k: v for k, v in stored.items() if k != "generation"}
            assert resolved["spec_hash"] == spec_hash(without), task_id
            assert summary["spec_hash"] == spec_hash(stored), task_id
        else:
            assert resolved["spec_hash"] == summary["spec_hash"], task_id
