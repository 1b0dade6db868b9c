"""Cluster resources: family defaults, recipe overrides, schema checks, never in fingerprints."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from reprolm.plan import Plan
from reprolm.recipe import STAGES, RecipeError, load_recipe, recipe_schema
from reprolm.resources import FAMILIES, FAMILY_DEFAULTS, family, stage_resources

ROOT = Path(__file__).resolve().parents[2]


def micro() -> dict:
    return yaml.safe_load((ROOT / "config" / "micro.yaml").read_text())


def test_every_stage_has_a_family_and_a_schema_block():
    assert sorted(s for stages in FAMILIES.values() for s in stages) == sorted(STAGES)
    assert sorted(recipe_schema()["properties"]["resources"]["properties"]) == sorted(STAGES)


def test_family_defaults_then_recipe_overrides():
    assert family("sft") == "training" and family("curate") == "data"
    assert stage_resources("curate") == {
        key: value for key, value in FAMILY_DEFAULTS["data"].items() if key != "gpus"
    }, "zero GPUs requests none"
    assert "gpu" not in stage_resources("pretrain")
    merged = stage_resources(
        "pretrain", {"gpus": 4, "mem_mb": 64000, "slurm_partition": "gpu", "slurm_extra": "-q x"}
    )
    assert merged["gpu"] == 4 and "gpus" not in merged, "the plugin's resource name"
    assert merged["mem_mb"] == 64000 and merged["runtime"] == FAMILY_DEFAULTS["training"]["runtime"]
    assert merged["slurm_partition"] == "gpu" and merged["slurm_extra"] == "-q x"


def test_plan_merges_the_recipe_block_per_stage():
    recipe = micro()
    recipe["resources"] = {"sft": {"gpus": 2, "slurm_account": "lab"}, "world": {"runtime": 5}}
    plan = Plan(load_recipe(recipe))
    assert plan.resources("sft")["gpu"] == 2 and plan.resources("sft")["slurm_account"] == "lab"
    assert plan.resources(plan.get("world", "world"))["runtime"] == 5
    assert "gpu" not in plan.resources("dpo") and "slurm_account" not in plan.resources("dpo")


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"sft": {"gpu": 1}}, "resources.sft.gpu: unknown key"),
        ({"train": {"gpus": 1}}, "resources.train: unknown key"),
        ({"sft": {"mem_mb": "lots"}}, "resources.sft.mem_mb: 'lots' is not of type 'integer'"),
    ],
)
def test_bad_resources_are_refused_by_key_path(block, message):
    recipe = micro()
    recipe["resources"] = block
    with pytest.raises(RecipeError, match=message.replace(".", r"\.")):
        load_recipe(recipe)


def test_resources_leave_every_fingerprint_and_config_unchanged():
    # Batches that split over the 16 training processes below (the plan refuses any other).
    batched = micro()
    for stage in ("pretrain", "sft", "dpo"):
        batched[stage]["batch_size"] = 16
    batched["rlvr"]["prompts_per_step"] = 4
    base = Plan(load_recipe(batched))
    recipe = copy.deepcopy(batched)
    every_key = {"gpus": 8, "nodes": 2, "tasks": 16, "cpus_per_task": 12, "mem_mb": 512000}
    every_key |= {"runtime": 2880, "slurm_partition": "h100", "slurm_account": "lab"}
    every_key |= {"slurm_extra": "--exclusive"}
    recipe["resources"] = {stage: dict(every_key) for stage in STAGES}
    changed = Plan(load_recipe(recipe))
    assert changed.resources("evaluate")["gpu"] == 8
    assert changed.resources("pretrain")["gres"] == "gpu:8", "training: 8 GPUs on each node"
    assert {k: j.fingerprint for k, j in changed.jobs.items()} == {
        k: j.fingerprint for k, j in base.jobs.items()
    }
    assert all(changed.jobs[key].config == job.config for key, job in base.jobs.items())


class _Resources(dict):
    """Snakemake's job resources: mapping and attribute access."""

    __getattr__ = dict.__getitem__


def test_sbatch_arguments_follow_the_recipe():
    submit_string = pytest.importorskip("snakemake_executor_plugin_slurm.submit_string")
    recipe = micro()
    recipe["resources"] = {
        "pretrain": {"gpus": 2, "nodes": 1, "mem_mb": 9000, "runtime": 90, "slurm_extra": "-q hi"},
        "curate": {"cpus_per_task": 3},
    }
    plan = Plan(load_recipe(recipe))
    params = {"run_uuid": "u", "slurm_logfile": "l", "comment_str": "c", "workdir": "/w"}
    params |= {"account": "-A lab", "partition": "-p h100"}

    def sbatch(stage: str) -> str:
        job = type("Job", (), {"resources": _Resources(plan.resources(stage)), "threads": 1})
        return submit_string.get_submit_command(job, params)

    pretrain = sbatch("pretrain")
    for argument in ("-A lab", "-p h100", "-t 90", "--mem 9000", "--nodes=1", "-q hi"):
        assert argument in pretrain
    assert "--ntasks-per-gpu" not in pretrain, "one task runs torchrun over the node's GPUs"
    gres = pytest.importorskip("snakemake_executor_plugin_slurm.utils").set_gres_string
    pretrain_job = type("Job", (), {"resources": _Resources(plan.resources("pretrain"))})
    assert gres(pretrain_job).strip() == "--gpus=2"
    assert "--cpus-per-task=3" in sbatch("curate")
    assert "--ntasks=1" in sbatch("world") and "--cpus-per-task=1" in sbatch("world")
