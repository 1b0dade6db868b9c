"""A job's recorded placement and what `rebuild --as-recorded` refuses (reprolm.placement)."""

from __future__ import annotations

import sys

import pytest

from reprolm import placement
from reprolm.placement import Placement, describe, job_command, placement_of, refusals

ZERO2_CPU = {
    "execution": {
        "launch": {"nodes": 1, "procs_per_node": 2, "deepspeed": "zero2", "micro_batch_size": 0}
    },
    "environment": {"world_size": 2, "accelerators": {}, "container_image": None},
}
DIGEST = "sha256:" + "ab" * 32


def manifest(launch=None, accelerators=None, image=None, world=1):
    execution = {"launch": launch} if launch is not None else {}
    return {
        "execution": execution,
        "environment": {"world_size": world, "accelerators": accelerators or {},
                        "container_image": image},
    }  # fmt: skip


def test_a_recorded_two_process_cpu_job_is_read_and_runnable_here():
    recorded = placement_of(ZERO2_CPU)
    assert (recorded.processes, recorded.deepspeed, recorded.device) == (2, "zero2", "cpu")
    assert refusals(recorded, environ={}) == []
    assert describe(recorded) == "2 processes (1 node x 2, DeepSpeed zero2) on cpu, on the host"


def test_a_plain_single_process_job_has_the_default_placement():
    assert placement_of(manifest()) == Placement()


def test_a_recorded_gpu_job_is_refused_without_gpus(monkeypatch):
    monkeypatch.setattr(placement, "gpus_here", lambda: 0)
    gpu = {"gpu_model": "NVIDIA H100", "gpu_count": 8, "cuda": "12.4"}
    recorded = placement_of(manifest(accelerators=gpu))
    assert recorded.device == "cuda"
    (reason,) = refusals(recorded, environ={})
    assert "environment.accelerators" in reason and "NVIDIA H100" in reason
    assert "0 usable GPU" in reason


def test_several_nodes_need_a_slurm_allocation_of_that_many_nodes():
    launch = {"nodes": 2, "procs_per_node": 1, "deepspeed": "none", "micro_batch_size": 0}
    recorded = placement_of(manifest(launch=launch, world=2))
    (reason,) = refusals(recorded, environ={})
    assert "execution.launch.nodes=2" in reason and "not in one" in reason
    small = {"SLURM_JOB_ID": "7", "SLURM_JOB_NUM_NODES": "1"}
    assert "allocation of 1 node" in refusals(recorded, environ=small)[0]
    assert refusals(recorded, environ={"SLURM_JOB_ID": "7", "SLURM_JOB_NUM_NODES": "2"}) == []


@pytest.mark.parametrize(
    ("record", "named"),
    [
        (manifest(world=4), "environment.world_size=4 but no execution.launch"),
        (manifest(launch={**ZERO2_CPU["execution"]["launch"], "hosts": 3}, world=2),
         "execution.launch.hosts is unknown"),
        (manifest(launch={**ZERO2_CPU["execution"]["launch"], "deepspeed": "zero2+nvme"}, world=2),
         "execution.launch.deepspeed='zero2+nvme'"),
    ],
)  # fmt: skip
def test_an_unknown_launcher_is_refused(record, named):
    (reason,) = refusals(placement_of(record), environ={})
    assert named in reason and "the recorded launcher is unknown" in reason


def test_a_recorded_image_needs_its_digest_a_runtime_and_the_image(monkeypatch):
    unpinned = placement_of(manifest(image={"runtime": "podman", "image": None, "digest": None}))
    assert "without an image digest" in refusals(unpinned, environ={})[0]
    pinned = placement_of(
        manifest(image={"runtime": "apptainer", "image": "ghcr.io/x/train", "digest": DIGEST})
    )
    monkeypatch.setattr(placement.shutil, "which", lambda name: None)
    assert "no container runtime" in refusals(pinned, environ={})[0]
    monkeypatch.setattr(placement.shutil, "which", lambda name: "/usr/bin/podman")
    monkeypatch.setattr(placement, "local_image", lambda digest: None)
    (reason,) = refusals(pinned, environ={})
    assert f"ghcr.io/x/train@{DIGEST}" in reason and "podman pull" in reason
    monkeypatch.setattr(placement, "local_image", lambda digest: "f00d")
    assert refusals(pinned, environ={}) == []


def test_the_job_runs_through_the_recorded_launcher_on_the_cpu():
    args = ["--config-json", "{}", "--output", "out/pretrain-0123456789ab"]
    command, env = job_command(placement_of(ZERO2_CPU), "pretrain", args, [])
    assert command == [
        sys.executable, "-P", "-m", "reprolm.launch", "--nodes=1", "--procs-per-node=2",
        "--deepspeed=zero2", "--micro-batch-size=0", "--", "stages.pretrain", *args,
    ]  # fmt: skip
    assert env == {"PYTHONSAFEPATH": "1", "CUDA_VISIBLE_DEVICES": ""}
    assert job_command(None, "pretrain", args, []) == (
        [sys.executable, "-P", "-m", "stages.pretrain", *args],
        {},
    )


def test_a_job_with_a_recorded_image_runs_in_it_by_local_id(monkeypatch, tmp_path):
    monkeypatch.setattr(placement, "local_image", lambda digest: "f00d")
    image = {"runtime": "podman", "image": "localhost/reprolm-data", "digest": DIGEST}
    command, _ = job_command(placement_of(manifest(image=image)), "curate", ["-x"], [tmp_path])
    assert command[:4] == ["podman", "run", "--rm", "--network=none"]
    assert f"--volume={tmp_path}:{tmp_path}" in command
    assert f"--env=REPROLM_IMAGE=localhost/reprolm-data@{DIGEST}" in command
    at = command.index("f00d")
    assert command[at + 1 :] == ["/opt/venv/bin/python", "-P", "-m", "stages.curate", "-x"]
