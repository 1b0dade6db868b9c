"""Launch commands and DeepSpeed configs generated from a recipe's resources."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from reprolm.deepspeed_config import DeepSpeedConfigError, deepspeed_config
from reprolm.launch import (
    LaunchError,
    deepspeed_spec,
    launch_command,
    parse_deepspeed_spec,
)
from reprolm.resources import stage_resources

ROOT = Path(__file__).resolve().parents[2]
CALL = ["--config-json", "{}", "--output", "artifacts/pretrain/pretrain-0123456789ab"]
PRETRAIN = {"batch_size": 16, "max_grad_norm": 1.0}


def test_one_process_keeps_the_plain_stage_command():
    assert launch_command("stages.sft", CALL, python="py") == ["py", "-m", "stages.sft", *CALL]


def test_one_node_runs_torchrun_standalone():
    command = launch_command("stages.sft", CALL, procs_per_node=8, python="py")
    assert command == [
        "py", "-m", "torch.distributed.run", "--nproc-per-node=8", "--standalone", "--nnodes=1",
        "-m", "stages.sft", *CALL,
    ]  # fmt: skip


def test_several_nodes_run_one_torchrun_per_node_under_srun():
    command = launch_command(
        "stages.pretrain", CALL, nodes=4, procs_per_node=8, python="py",
        head_node="gpu017", job_id="4242",
    )  # fmt: skip
    assert command == [
        "srun", "--nodes=4", "--ntasks=4", "--ntasks-per-node=1", "--kill-on-bad-exit=1",
        "py", "-m", "torch.distributed.run", "--nproc-per-node=8", "--nnodes=4",
        "--rdzv-backend=c10d", "--rdzv-endpoint=gpu017:29500", "--rdzv-id=4242",
        "-m", "stages.pretrain", *CALL,
    ]  # fmt: skip


def test_several_nodes_without_slurm_are_refused():
    with pytest.raises(LaunchError, match="needs SLURM"):
        launch_command("stages.pretrain", CALL, nodes=2, procs_per_node=8)


def test_deepspeed_spec_round_trips():
    assert deepspeed_spec(None) == "none" and parse_deepspeed_spec("none") is None
    block = {"zero_stage": 3, "offload_optimizer": True, "offload_params": False}
    assert deepspeed_spec(block) == "zero3+offload_optimizer"
    assert parse_deepspeed_spec("zero3+offload_optimizer") == block
    with pytest.raises(LaunchError, match="expected 'none'"):
        parse_deepspeed_spec("zero2+fast")


def test_zero2_config_splits_the_global_batch():
    config = deepspeed_config("pretrain", PRETRAIN, {"zero_stage": 2}, world_size=4)
    assert config["train_batch_size"] == 16
    assert config["train_micro_batch_size_per_gpu"] == 4
    assert config["gradient_accumulation_steps"] == 1
    assert config["zero_optimization"]["stage"] == 2
    assert config["zero_optimization"]["reduce_bucket_size"] == "auto"
    assert config["bf16"] == {"enabled": False} and "optimizer" not in config
    accumulated = deepspeed_config("pretrain", PRETRAIN, {"zero_stage": 1}, 4, micro_batch_size=2)
    assert accumulated["gradient_accumulation_steps"] == 2


def test_zero3_offload_and_bf16():
    config = deepspeed_config(
        "sft",
        {**PRETRAIN, "precision": "bf16"},
        {"zero_stage": 3, "offload_optimizer": True, "offload_params": True},
        world_size=8,
    )
    zero = config["zero_optimization"]
    assert zero["offload_optimizer"]["device"] == "cpu" and zero["offload_param"]["device"] == "cpu"
    assert zero["stage3_gather_16bit_weights_on_model_save"] is True
    assert config["bf16"] == {"enabled": True}
    assert config["optimizer"]["type"] == "AdamW"


def test_rlvr_batch_is_prompts_times_generations():
    rlvr = {"prompts_per_step": 4, "num_generations": 8, "max_grad_norm": 1.0}
    assert deepspeed_config("rlvr", rlvr, {}, world_size=8)["train_micro_batch_size_per_gpu"] == 4


@pytest.mark.parametrize(
    ("placement", "world", "micro", "message"),
    [
        ({"offload_params": True}, 2, None, r"offload_params needs zero_stage 3"),
        ({"zero_stage": 0, "offload_optimizer": True}, 2, None, r"offload_optimizer needs"),
        ({"zero_stage": 5}, 2, None, r"zero_stage=5"),
        ({}, 3, None, r"pretrain\.batch_size=16 is not divisible by the 3 training processes"),
        ({}, 2, 3, r"resources\.pretrain\.micro_batch_size=3 does not divide"),
    ],
)
def test_bad_placements_are_named(placement, world, micro, message):
    with pytest.raises(DeepSpeedConfigError, match=message):
        deepspeed_config("pretrain", PRETRAIN, placement, world, micro)


def test_training_resources_carry_the_launch_shape():
    single = stage_resources("pretrain")
    assert single["procs_per_node"] == 1 and single["deepspeed"] == "none"
    assert "mpi" not in single and single["tasks"] == 1
    node = stage_resources("sft", {"gpus": 8, "deepspeed": {"zero_stage": 3}})
    assert node["procs_per_node"] == 8 and node["gpu"] == 8 and node["tasks_per_gpu"] == 0
    assert node["deepspeed"] == "zero3" and "mpi" not in node
    nodes = stage_resources("pretrain", {"gpus": 8, "nodes": 4, "micro_batch_size": 2})
    assert nodes["mpi"] == "srun" and nodes["gres"] == "gpu:8" and "gpu" not in nodes
    assert nodes["tasks"] == 4 and nodes["micro_batch_size"] == 2
    cpu = stage_resources("pretrain", {"tasks": 2})
    assert cpu["procs_per_node"] == 2 and cpu["tasks"] == 1, "one sbatch task runs torchrun"
    assert "procs_per_node" not in stage_resources("evaluate", {"gpus": 2})


def test_launcher_writes_the_deepspeed_config_and_names_bad_batches(tmp_path):
    output = tmp_path / "artifacts" / "pretrain" / "pretrain-0123456789ab"
    call = ["--config-json", json.dumps(PRETRAIN), "--output", str(output)]
    base = [sys.executable, "-m", "reprolm.launch", "--procs-per-node", "2", "--deepspeed"]
    done = subprocess.run(
        [*base, "zero2", "--dry-run", "--", "stages.pretrain", *call],
        capture_output=True, text=True, cwd=ROOT, check=True,
    )  # fmt: skip
    assert "torch.distributed.run --nproc-per-node=2 --standalone" in done.stderr
    written = json.loads((output.parent / f".{output.name}.deepspeed.json").read_text())
    assert written["train_micro_batch_size_per_gpu"] == 8
    bad = subprocess.run(
        [*base, "zero2", "--procs-per-node", "3", "--dry-run", "--", "stages.pretrain", *call],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert bad.returncode == 2 and "not divisible by the 3 training processes" in bad.stderr
    plain = subprocess.run(
        [*base[:-1], "--procs-per-node", "2", "--micro-batch-size", "3", "--dry-run", "--",
         "stages.pretrain", *call],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert plain.returncode == 2 and "micro_batch_size=3 does not divide" in plain.stderr


# --- The launcher's verdict on a multi-process job's exit (reprolm.launch.judge_exit) ---------


def _installed(tmp_path, monkeypatch):
    """A complete artifact installed by the real runner (as rank 0 does), and its directory."""
    from reprolm.fingerprint import fingerprint
    from reprolm.recipe import load_recipe, stage_config
    from reprolm.runner import execute

    monkeypatch.chdir(tmp_path)
    config = stage_config(load_recipe({"name": "t", "threads": 1}), "world")
    out = tmp_path / "artifacts" / "world" / f"x-{fingerprint('world', config, {})}"

    def write(config, inputs, output_dir, context):
        (output_dir / "model.bin").write_bytes(b"weights")
        return {}

    def install():
        execute("world", write, config, {}, out, reproducibility={"level": "bitwise"},
                uses_torch=False)  # fmt: skip

    install()
    return out, install


def test_a_rank_dying_after_a_verified_install_is_success_with_a_warning(tmp_path, monkeypatch):
    from reprolm.launch import judge_exit

    out, _ = _installed(tmp_path, monkeypatch)
    assert judge_exit(0, out, None) == (0, "")
    code, line = judge_exit(1, out, None)  # torchrun's exit when a rank aborted (SIGABRT)
    assert code == 0
    assert f"installed {out} and its payload verifies" in line and "a rank died at exit" in line


def test_a_failed_job_with_an_incomplete_or_old_artifact_stays_failed(tmp_path, monkeypatch):
    from reprolm.keep import manifest_link, restore_manifest
    from reprolm.launch import file_identity, judge_exit

    assert judge_exit(1, tmp_path / "artifacts" / "world" / "x-0123456789ab", None) == (1, "")
    out, install = _installed(tmp_path, monkeypatch)
    # The previous artifact, its manifest put back from the kept link: not this job's install.
    before = file_identity(manifest_link(out))
    (out / "provenance.json").unlink()  # what Snakemake does before the job
    assert restore_manifest(out)
    assert judge_exit(1, out, before) == (1, "")
    # This job installed anew over it: success even though a rank then died.
    install()
    assert judge_exit(-6, out, before)[0] == 0
    # Installed, but the payload no longer matches its manifest: never success.
    (out / "model.bin").write_bytes(b"truncated")
    assert judge_exit(-6, out, None) == (-6, "")
    (out / "model.bin").write_bytes(b"weights")
    (out / "provenance.json").unlink()
    assert judge_exit(1, out, None) == (1, ""), "no manifest: incomplete"


def test_torchruns_own_report_of_a_ctrl_c_is_left_out_of_the_log():
    from reprolm.launch import without_torchrun_report

    lines = [
        "step 3 loss 2.1\n",
        "W1202 14:12:57.577000 31199 torch/distributed/elastic/agent/server/api.py:753] "
        "Received 2 death signal, shutting down workers\n",
        "interrupted: stage pretrain stopped; nothing installed\n",
        "Traceback (most recent call last):\n",
        '  File "torch/distributed/run.py", line 1032, in <module>\n',
        "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: \n",
        "=" * 60 + "\n",
        "stages.pretrain FAILED\n",
        "=" * 60 + "\n",
        "after the report\n",
    ]
    assert without_torchrun_report(lines) == [
        "step 3 loss 2.1\n",
        "interrupted: stage pretrain stopped; nothing installed\n",
        "after the report\n",
    ]


def test_every_rank_leaves_the_process_group_before_exit(tmp_path):
    """reprolm.teardown on a real gloo group (one process): barrier, destroy, nothing left."""
    import torch.distributed as dist

    from reprolm.teardown import leave_process_group

    assert leave_process_group() is False  # no group: nothing to do
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}",
                            rank=0, world_size=1)  # fmt: skip
    assert dist.is_initialized()
    assert leave_process_group() is True
    assert not dist.is_initialized()
