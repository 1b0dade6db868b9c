"""The GPU-scale recipes (config/olmo2-1b.yaml, olmoe-1b-7b.yaml, tulu3-8b.yaml) as far as this
machine can take them: each builds its full DAG under the SLURM profile (a dry run needs no
SLURM), and its sbatch arguments, launch commands and DeepSpeed configs are what it asks for.

No GPU, no multi-node SLURM here: the sbatch line comes from the SLURM plugin's own function on
the planned resources, and the launch command runs with ``--dry-run`` under a stand-in
``scontrol`` that names the nodes a real allocation would have.
"""

from __future__ import annotations

import itertools
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from reprolm.plan import Plan, load_plan
from reprolm.recipe import RecipeError, load_recipe
from tests.support import checkout_env, make_checkout

RECIPES = ("olmo2-1b", "olmoe-1b-7b", "tulu3-8b")
# What each recipe asks of its first training stage: (stage, nodes, GPUs per node, ZeRO stage,
# micro batch, gradient accumulation, global batch).
EXPECTED = {
    "olmo2-1b": ("pretrain", 8, 8, 2, 8, 1, 512),
    "olmoe-1b-7b": ("pretrain", 16, 8, 3, 4, 2, 1024),
    "tulu3-8b": ("sft", 8, 8, 3, 1, 2, 128),
}


class _Resources(dict):
    """Snakemake's job resources: mapping and attribute access."""

    __getattr__ = dict.__getitem__


# Shard jobs each recipe's `curate` block fans out into (128 by default).
SHARD_JOBS = {"olmo2-1b": 128, "olmoe-1b-7b": 128, "tulu3-8b": 64}
# Leading bytes the plan-time source check sniffs per placeholder file.
MAGIC = {".zst": b"\x28\xb5\x2f\xfd", ".gz": b"\x1f\x8b", ".parquet": b"PAR1"}


def stand_in_sources(where: Path, recipe: dict) -> None:
    """Point every `sources` path of ``recipe`` at a placeholder under ``where``: a file with
    the format's leading bytes, or a save_to_disk-shaped directory, enough for planning."""
    for kind, entries in recipe.get("sources", {}).items():
        for entry in entries:
            local = where / "data-placeholders" / recipe["name"] / kind / entry["name"]
            local.mkdir(parents=True)
            pattern = Path(entry["path"]).name
            if entry["format"] == "hf_disk":
                (local / "state.json").write_text("{}")
                entry["path"] = str(local)
            elif "*" in pattern:  # a glob: one file it matches
                suffix = pattern.split("*", 1)[1]
                head = next((m for ext, m in MAGIC.items() if suffix.endswith(ext)), b"{}")
                (local / f"part-0{suffix}").write_bytes(head + b"\n")
                entry["path"] = str(local / pattern)
            else:  # a directory of jsonl files
                (local / "part-0.jsonl").write_text("{}\n")
                entry["path"] = str(local)


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """A copy of the project whose tulu3-8b recipe points at a small HF-format base model and
    whose `sources` point at placeholder files (the real corpora are not here)."""
    where = make_checkout(tmp_path_factory.mktemp("scale") / "repo")
    base = where / "base-model"
    base.mkdir()
    (base / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 64}))
    (base / "model.safetensors").write_bytes(b"not really weights, only hashed here")
    for name in RECIPES:
        path = where / "config" / f"{name}.yaml"
        recipe = yaml.safe_load(path.read_text())
        if name == "tulu3-8b":
            recipe["base_model"]["path"] = str(base)
        stand_in_sources(where, recipe)
        path.write_text(yaml.safe_dump(recipe))
    return where


@pytest.mark.parametrize("name", RECIPES)
def test_scale_recipe_fans_out_sources_and_shards(checkout, name):
    plan = plan_of(checkout, name)
    recipe = yaml.safe_load((checkout / "config" / f"{name}.yaml").read_text())
    labels = [f"{kind}.{e['name']}" for kind, es in recipe["sources"].items() for e in es]
    assert sorted(job.label for job in plan.by_stage("source")) == sorted(labels)
    shards = plan.by_stage("curate_shard")
    assert len(shards) == SHARD_JOBS[name]
    assert shards[-1].config["last"] == recipe["curate"]["shards"]
    gather = plan.get("curate", "curate")
    assert {f"source_{label}" for label in labels} <= set(gather.inputs)
    assert sum(name.startswith("shard_") for name in gather.inputs) == len(shards)
    assert plan.resources("curate_shard")["slurm_partition"] == "cpu"


def test_a_missing_source_fails_the_plan_naming_its_entry(checkout):
    recipe = yaml.safe_load((checkout / "config" / "olmo2-1b.yaml").read_text())
    recipe["sources"]["pretrain"][1]["path"] = "/nonexistent/starcoder/*.parquet"
    with pytest.raises(ValueError, match=r"sources.pretrain\[1\] \(starcoder\)"):
        load_plan(recipe)


def plan_of(checkout: Path, name: str) -> Plan:
    return load_plan(checkout / "config" / f"{name}.yaml")


def dry_run(checkout: Path, name: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "-p", "--profile", "workflow/profiles/slurm",
         "--configfile", f"config/{name}.yaml"],
        cwd=checkout, env=checkout_env(checkout), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


@pytest.mark.parametrize("name", RECIPES)
def test_scale_recipe_builds_its_dag_sbatch_line_launch_and_deepspeed_config(
    checkout, name, tmp_path
):
    plan = plan_of(checkout, name)
    output = dry_run(checkout, name)
    for job in plan.jobs.values():
        assert job.manifest in output, f"{job.key} missing from the dry run"
    assert (
        f"total{len(plan.jobs):>16}" in " ".join(output.split("\n"))
        or str(len(plan.jobs)) in output
    )

    stage, nodes, gpus, zero, micro, accumulation, batch = EXPECTED[name]
    resources = plan.resources(stage)
    submit = pytest.importorskip("snakemake_executor_plugin_slurm.submit_string")
    gres = pytest.importorskip("snakemake_executor_plugin_slurm.utils").set_gres_string
    job = type("Job", (), {"resources": _Resources(resources), "threads": 8})
    params = {"run_uuid": "u", "slurm_logfile": "l", "comment_str": "c", "workdir": "/w"}
    params |= {"account": f"-A {resources['slurm_account']}"}
    params |= {"partition": f"-p {resources['slurm_partition']}"}
    sbatch = submit.get_submit_command(job, params) + gres(job)
    wanted = [f"--nodes={nodes}", f"--ntasks={nodes}", f"--gres=gpu:{gpus}", "-p gpu"]
    wanted += ["-A my-account", "--cpus-per-task=96", "--mem 1000000", "-t 2880"]
    for argument in wanted:
        assert argument in sbatch, (argument, sbatch)
    assert "--ntasks-per-gpu" not in sbatch and "--gpus=" not in sbatch

    # The job's shell line, as the dry run printed it, run by the launcher with --dry-run.
    artifact = plan.get(stage, stage).artifact_dir
    line = next(
        line for line in output.splitlines() if "reprolm.launch" in line and artifact in line
    )
    command = (
        line.split("Shell command: ")[-1]
        .split(" > logs/")[0]
        .replace("reprolm.launch", "reprolm.launch --dry-run", 1)
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scontrol = bin_dir / "scontrol"  # stands in for a real allocation's node list
    scontrol.write_text('#!/bin/sh\nprintf "gpu017\\ngpu018\\n"\n')
    scontrol.chmod(0o755)
    env = checkout_env(checkout, SLURM_JOB_NODELIST="gpu[017-018]", SLURM_JOB_ID="77")
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    done = subprocess.run(
        ["bash", "-c", command], cwd=checkout, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    launched = shlex.split(done.stderr.split("reprolm.launch: ", 1)[1])
    assert launched[:5] == [
        "srun", f"--nodes={nodes}", f"--ntasks={nodes}", "--ntasks-per-node=1",
        "--kill-on-bad-exit=1",
    ]  # fmt: skip
    for flag in (f"--nproc-per-node={gpus}", f"--nnodes={nodes}", "--rdzv-backend=c10d",
                 "--rdzv-endpoint=gpu017:29500", "--rdzv-id=77", f"stages.{stage}"):  # fmt: skip
        assert flag in launched, flag

    written = checkout / Path(artifact).parent / f".{Path(artifact).name}.deepspeed.json"
    ds = json.loads(written.read_text())
    assert ds["zero_optimization"]["stage"] == zero
    assert ds["bf16"] == {"enabled": True}
    assert ds["train_micro_batch_size_per_gpu"] == micro
    assert ds["gradient_accumulation_steps"] == accumulation
    assert ds["train_batch_size"] == batch == micro * accumulation * nodes * gpus


def test_tulu3_post_trains_the_base_model_with_vllm(checkout):
    plan = plan_of(checkout, "tulu3-8b")
    assert not plan.by_stage("pretrain") and not plan.by_stage("tokenize")
    base = plan.get("base_model", "base_model")
    assert plan.get("sft", "sft").inputs["model"] == base.key
    assert plan.get("evaluate", "pretrain").inputs["model"] == base.key, "the base is evaluated"
    assert plan.get("rlvr", "rlvr").config["use_vllm"] is True
    assert plan.get("evaluate", "sft").config["backend"] == "vllm"


def test_the_scale_models_keep_their_shapes(checkout):
    dense = plan_of(checkout, "olmo2-1b").get("pretrain", "pretrain").config
    assert dense["model"]["num_layers"] == 16 and dense["model"]["hidden_size"] == 2048
    assert dense["seq_len"] == 4096 and dense["learning_rate"] == 4e-4
    moe = plan_of(checkout, "olmoe-1b-7b").get("pretrain", "pretrain").config
    assert moe["architecture"] == "olmoe"
    assert moe["model"]["num_experts"] == 64 and moe["model"]["num_experts_per_tok"] == 8


def test_unknown_vllm_options_are_refused_by_key_path(checkout):
    recipe = yaml.safe_load((checkout / "config" / "tulu3-8b.yaml").read_text())
    recipe["rlvr"]["vllm_mode"] = "remote"
    recipe["evaluate"]["backend"] = "sglang"
    with pytest.raises(RecipeError) as error:
        load_recipe(recipe)
    assert "rlvr.vllm_mode" in str(error.value) and "evaluate.backend" in str(error.value)


def example_blocks(text: str) -> dict:
    """The commented-out `midtrain:` and `soup:` examples of a recipe file (top level and under
    `resources:`), uncommented and parsed."""
    found: dict = {"resources": {}}
    lines = text.splitlines()
    for number, line in enumerate(lines):
        for name in ("midtrain", "soup"):
            if line.startswith(f"# {name}:"):  # a block: its indented comment lines follow
                block = [line[2:]]
                block += [
                    x[2:]
                    for x in itertools.takewhile(
                        lambda x: x.startswith("#   "), lines[number + 1 :]
                    )
                ]
                found.update(yaml.safe_load("\n".join(block)))
            if line.startswith(f"  # {name}: {{"):
                found["resources"].update(yaml.safe_load(line.replace("  # ", "", 1)))
    return found


def test_olmo2_midtrain_and_soup_examples_plan(checkout):
    """Uncommented, config/olmo2-1b.yaml's examples plan the anneal and the soup, sft from it."""
    root = Path(__file__).resolve().parents[2]
    blocks = example_blocks((root / "config" / "olmo2-1b.yaml").read_text())
    assert set(blocks) == {"midtrain", "soup", "resources"} and set(blocks["resources"]) == {
        "midtrain",
        "soup",
    }
    recipe = yaml.safe_load((checkout / "config" / "olmo2-1b.yaml").read_text())
    recipe["midtrain"] = blocks["midtrain"]
    recipe["soup"] = blocks["soup"]
    recipe["pretrain"]["save_steps"] = [1900000]
    recipe["resources"].update(blocks["resources"])
    plan = load_plan(recipe)
    assert plan.get("midtrain", "midtrain").config["seq_len"] == 4096
    assert plan.get("soup", "soup").inputs == {
        "model_midtrain": "midtrain/midtrain",
        "model_pretrain": "pretrain/pretrain",
    }
    assert plan.get("sft", "sft").inputs["model"] == "soup/soup"
    assert plan.resources("midtrain")["nodes"] == 8
