"""The whole DAG under real Snakemake on the micro recipe.

Runs in a copy of the repository (code, rules, recipes) so that editing a stage's source is
tested without touching the checkout. Checks: every artifact's manifest and payload; the no-op
rerun; identical digests from a second fresh directory; a changed SFT value reruns exactly sft
and what depends on it into new directories (old ones stay); an edited stage source reruns
that stage by content; a bad recipe fails before any job starts, naming the key path.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml

from reprolm.manifest import read_manifest, verify_payload
from reprolm.plan import load_plan
from reprolm.stagetable import OPT_IN_STAGES, TRAINING_STAGES
from tests.support import MICRO, clone_workspace, make_checkout, run_snakemake

pytestmark = pytest.mark.slow
# The micro recipe has no midtrain block: its training chain is pretrain -> sft -> dpo -> rlvr.
TRAINED = tuple(stage for stage in TRAINING_STAGES if stage not in OPT_IN_STAGES)


def snakemake(checkout: Path, *args: str, recipe: str = MICRO, check: bool = True):
    return run_snakemake(checkout, *args, recipe=recipe, check=check)


def planned_jobs(checkout: Path) -> dict[str, int]:
    """Rule -> job count of what a dry run would execute (empty when nothing to do)."""
    done = snakemake(checkout, "--dry-run")
    out = done.stdout + done.stderr
    if "Nothing to be done" in out:
        return {}
    table = out.split("Job stats:", 1)[1]
    return {
        rule: int(count)
        for rule, count in re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.M)
        if rule != "total"
    }


def digests(checkout: Path, recipe: str = "config/micro.yaml") -> dict[str, str]:
    plan = load_plan(checkout / recipe)
    return {
        job.key: read_manifest(checkout / job.artifact_dir)["digest"] for job in plan.jobs.values()
    }


@pytest.fixture(scope="module")
def first_run(micro_workspace, micro_run_output, tmp_path_factory):
    """A copy of the session's micro run (made by real Snakemake from an empty directory) that
    these tests may change, and what that run printed."""
    checkout = clone_workspace(micro_workspace, tmp_path_factory.mktemp("e2e") / "a")
    return checkout, micro_run_output


def test_every_artifact_has_a_verified_manifest(first_run):
    checkout, done = first_run
    plan = load_plan(checkout / "config/micro.yaml")
    assert len(plan.jobs) == 13  # with evaldata (the micro recipe lists specs)
    for job in plan.jobs.values():
        artifact = checkout / job.artifact_dir
        manifest = read_manifest(artifact)
        assert manifest["stage"] == job.stage
        assert manifest["fingerprint"] == job.fingerprint
        assert verify_payload(artifact) == [], job.key
        assert manifest["reproducibility"]["level"] == "bitwise"
        assert manifest["environment"]["threads"] == job.config["threads"]
        code = manifest["code"]
        assert code["code_scope"] == "job-code/2"
        assert sorted(code["source_hashes"]) == code["source_files"]
        assert f"stages/{job.stage}/__init__.py" in code["source_files"]
        if job.stage in ("evaluate", "rlvr"):
            assert "evals/gsm8k.py" in code["source_files"], job.key
        for name, record in manifest["inputs"].items():
            upstream = read_manifest(checkout / record["path"])
            assert record["digest"] == upstream["digest"], f"{job.key} input {name}"
            assert record["path"] == plan.input_dirs(job)[name]
    # The demo's summary table is printed on success.
    assert "eval scores per checkpoint" in done
    release = checkout / plan.release.artifact_dir
    lineage = {p.name.split("-")[0] for p in (release / "lineage").iterdir()}
    assert {"world", "curate", "tokenize", *TRAINED} <= lineage


def test_second_run_does_nothing(first_run):
    checkout, _ = first_run
    assert planned_jobs(checkout) == {}


def test_fresh_directory_gives_identical_digests(first_run, tmp_path):
    checkout, _ = first_run
    other = make_checkout(tmp_path / "b")
    snakemake(other)
    assert digests(other) == digests(checkout)


def test_changed_sft_value_reruns_sft_and_downstream_only(first_run):
    checkout, _ = first_run
    old = load_plan(checkout / "config/micro.yaml")
    recipe = yaml.safe_load((checkout / "config/micro.yaml").read_text())
    old_rate = old.get("sft", "sft").config["learning_rate"]
    recipe.setdefault("sft", {})["learning_rate"] = 0.5 * old_rate
    (checkout / "config/micro.yaml").write_text(yaml.safe_dump(recipe))
    assert planned_jobs(checkout) == {
        "all": 1, "sft": 1, "dpo": 1, "rlvr": 1, "evaluate": 3, "release": 1, "report": 1,
    }  # fmt: skip
    snakemake(checkout)
    new = load_plan(checkout / "config/micro.yaml")
    for stage in TRAINED[1:]:  # sft and every stage after it
        assert new.get(stage, stage).fingerprint != old.get(stage, stage).fingerprint
        assert (checkout / old.get(stage, stage).manifest).is_file(), "old artifact must stay"
        assert (checkout / new.get(stage, stage).manifest).is_file()
    unchanged = ("pretrain", "pretrain")
    assert new.get(*unchanged).fingerprint == old.get(*unchanged).fingerprint
    assert planned_jobs(checkout) == {}


def test_edited_stage_source_reruns_that_stage(first_run):
    checkout, _ = first_run
    source = checkout / "stages" / "release" / "__init__.py"
    source.write_text(source.read_text() + "\n# an edit that changes the stage's code digest\n")
    assert planned_jobs(checkout) == {"all": 1, "release": 1, "report": 1}
    os.utime(source, (1, 1))  # mtime is irrelevant: content decides
    snakemake(checkout)
    assert planned_jobs(checkout) == {}


def test_edited_metric_reruns_exactly_the_jobs_that_import_it(first_run):
    """The GSM8K answer rule is job code in ``evals/``: the evaluate jobs (metric) and rlvr
    (reward, through the verifier registry) import it; curate, pretrain, sft, dpo do not."""
    checkout, _ = first_run
    source = checkout / "evals" / "gsm8k.py"
    text = source.read_text()
    assert "def extract_answer" in text
    source.write_text(text.replace("def extract_answer", "# edited rule\ndef extract_answer", 1))
    assert planned_jobs(checkout) == {
        "all": 1, "rlvr": 1, "evaluate": 4, "release": 1, "report": 1,
    }  # fmt: skip
    source.write_text(text)
    assert planned_jobs(checkout) == {}


def test_edited_platform_module_reruns_nothing(first_run):
    checkout, _ = first_run
    source = checkout / "reprolm" / "report.py"
    text = source.read_text()
    source.write_text(text + "\n# a platform edit: never a payload byte\n")
    try:
        assert planned_jobs(checkout) == {}
    finally:
        source.write_text(text)


def test_bad_recipe_fails_before_any_job_naming_the_key(first_run, tmp_path):
    checkout, _ = first_run
    bad = tmp_path / "bad.yaml"
    recipe = yaml.safe_load((checkout / "config/micro.yaml").read_text())
    recipe["sft"]["learning_rat"] = 0.1
    recipe["pretrain"]["steps"] = "many"
    bad.write_text(yaml.safe_dump(recipe))
    before = sorted(p.relative_to(checkout) for p in (checkout / "artifacts").rglob("*"))
    done = snakemake(checkout, recipe=str(bad), check=False)
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "sft.learning_rat: unknown key" in output
    assert "pretrain.steps: 'many' is not of type 'integer'" in output
    assert sorted(p.relative_to(checkout) for p in (checkout / "artifacts").rglob("*")) == before
    assert json.dumps(before, default=str)
