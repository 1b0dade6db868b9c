"""Cluster resources per stage: stage-family defaults merged with the recipe's ``resources``.

Resources say where and how big a job runs (GPUs, memory, wall time, partition), not what it
computes, so they stay out of stage configs and fingerprints: moving a job to another partition
or giving it more memory lands in the same artifact directory. The names returned are the
Snakemake resource names snakemake-executor-plugin-slurm turns into sbatch arguments.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Stage families share defaults; sized for the tiny/micro recipes on one small node.
FAMILIES: dict[str, tuple[str, ...]] = {
    "data": ("world", "evaldata", "curate", "tokenize"),
    "training": ("pretrain", "sft", "dpo", "rlvr"),
    "evaluate": ("evaluate",),
    "release": ("release",),
}
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
    for name, stages in FAMILIES.items():
        if stage in stages:
            return name
    raise KeyError(f"stage {stage!r} belongs to no resource family ({sorted(FAMILIES)})")


def stage_resources(stage: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Snakemake resources of ``stage``: family defaults, then the recipe's ``resources.<stage>``.

    Zero GPUs and unset values are left out, so sbatch gets no empty ``--gpus``/``-p`` argument
    and the cluster's defaults apply.
    """
    merged = {**FAMILY_DEFAULTS[family(stage)], **dict(overrides or {})}
    resources = {}
    for key, value in sorted(merged.items()):
        if value is None or value == "" or (key == "gpus" and value == 0):
            continue
        resources[SNAKEMAKE_NAMES.get(key, key)] = value
    return resources
