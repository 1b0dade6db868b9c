"""Cluster resources per stage: stage-family defaults merged with the recipe's ``resources``.

Resources say where and how big a job runs (GPUs, memory, wall time, partition), not what it
computes, so they stay out of stage configs and fingerprints: moving a job to another partition
or giving it more memory lands in the same artifact directory. The names returned are the
Snakemake resource names snakemake-executor-plugin-slurm turns into sbatch arguments.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reprolm import stagetable
from reprolm.launch import deepspeed_spec

# Stage families share defaults; sized for the tiny/micro recipes on one small node. Which
# stage is in which family is the stage table's `resources` (reprolm/stagetable.py).
FAMILIES: dict[str, tuple[str, ...]] = stagetable.families("resources")
FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    "data": {"gpus": 0, "nodes": 1, "tasks": 1, "mem_mb": 2000, "runtime": 60},
    "training": {
        **{"gpus": 0, "nodes": 1, "tasks": 1, "mem_mb": 4000, "runtime": 240},
        # Not sbatch arguments: how often the job saves a resumable checkpoint (reprolm.resume).
        "checkpoint_every": 100,
        "checkpoint_keep": 2,
    },
    "evaluate": {"gpus": 0, "nodes": 1, "tasks": 1, "mem_mb": 4000, "runtime": 120},
    "release": {"gpus": 0, "nodes": 1, "tasks": 1, "mem_mb": 2000, "runtime": 30},
}
# Recipe key -> Snakemake resource name (the plugin reads `gpu` for `--gpus`).
SNAKEMAKE_NAMES = {"gpus": "gpu"}


def family(stage: str) -> str:
    """The family of ``stage`` (its defaults' key)."""
    return stagetable.stage(stage).resources


def stage_resources(stage: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Snakemake resources of ``stage``: family defaults, then the recipe's ``resources.<stage>``.

    Zero GPUs and unset values are left out, so sbatch gets no empty ``--gpus``/``-p`` argument
    and the cluster's defaults apply.
    """
    merged = {**FAMILY_DEFAULTS[family(stage)], **dict(overrides or {})}
    # Training stages start through reprolm.launch, which reads these.
    training = stagetable.stage(stage).launcher == stagetable.TRAINING_LAUNCHER
    launch = launch_resources(merged) if training else {}
    if launch and launch["procs_per_node"] * merged["nodes"] > 1:
        merged.update(distributed_sbatch(merged))
    merged.pop("deepspeed", None)
    merged.pop("micro_batch_size", None)
    resources = dict(launch)
    for key, value in sorted(merged.items()):
        if value is None or value == "" or (key == "gpus" and value == 0):
            continue
        resources[SNAKEMAKE_NAMES.get(key, key)] = value
    return resources


def launch_resources(merged: Mapping[str, Any]) -> dict[str, Any]:
    """What the training rules' launcher reads (reprolm/launch.py): processes per node, DeepSpeed.

    Processes per node are the node's GPUs, or ``tasks`` on CPU nodes. Snakemake resources are
    not rerun triggers, so changing them moves a job without rerunning it.
    """
    return {
        "procs_per_node": merged["gpus"] or merged["tasks"],
        "deepspeed": deepspeed_spec(merged.get("deepspeed")),
        "micro_batch_size": merged.get("micro_batch_size") or 0,
    }


def distributed_sbatch(merged: Mapping[str, Any]) -> dict[str, Any]:
    """sbatch shape of a multi-process job: one task per node (each runs one torchrun).

    One node: the slurm-jobstep plugin runs the job in a one-task step holding the node's GPUs.
    Several nodes: ``mpi`` tells the plugin not to wrap the job in ``srun -n1`` (the launcher runs
    ``srun`` itself), ``--gres=gpu:<gpus>`` asks for the GPUs on every node (``--gpus`` would be
    a total spread over nodes at SLURM's discretion), and ``tasks_per_gpu: 0`` keeps the plugin
    from adding ``--ntasks-per-gpu``.
    """
    shape: dict[str, Any] = {"tasks": merged["nodes"]}
    if merged["gpus"]:
        shape["tasks_per_gpu"] = 0
    if merged["nodes"] > 1:
        shape["mpi"] = "srun"
        if merged["gpus"]:
            shape["gres"] = f"gpu:{merged['gpus']}"
            shape["gpus"] = 0
    return shape
