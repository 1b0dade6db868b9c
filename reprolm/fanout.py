"""Stages whose jobs fan out: one source job per `sources` entry, curate shards in batches.

The plan (reprolm/plan.py) asks this module for the (label, config) of each job of such a stage.
Shard batches are labelled by their shard range, so a batch keeps its label (and artifact) when
only the batch size of *other* batches changes; the shard count is part of every batch's config.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from reprolm.recipe import RecipeError, validate_stage_config
from reprolm.sources import check_sources, check_verifiers
from reprolm.stagetable import stage

SOURCE_KINDS = ("pretrain", "sft", "preference", "rlvr")
# Batches of at most this many jobs by default: 10,000 shards plan as 128 jobs.
DEFAULT_SHARD_JOBS = 128
# The gather's command line names one input per shard job (Linux caps one argument, and so the
# `bash -c` line Snakemake runs, at 128 KiB; an input is ~70 characters).
MAX_SHARD_JOBS = 1000
# Keys of the `curate` block only the gather reads (the stage table's curate_shard entry).
GATHER_ONLY = stage("curate_shard").config_omits


def source_jobs(recipe: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(label ``<kind>.<name>``, config) of every `sources` entry, after the plan-time check
    that each names readable files (reprolm/sources.py)."""
    sources = recipe.get("sources") or {}
    check_sources(sources)
    check_verifiers(sources)
    for kind, entries in sources.items():
        weighted = [e["name"] for e in entries or () if e.get("weight") is not None]
        if weighted and len(weighted) != len(entries):
            unweighted = [e["name"] for e in entries if e.get("weight") is None]
            raise RecipeError(
                f"sources.{kind}: {', '.join(weighted)} name a weight but {', '.join(unweighted)} "
                "do not; give every source of a kind a weight (its share of the mix), or none"
            )
    jobs = []
    for kind in SOURCE_KINDS:
        for entry in sources.get(kind) or ():
            config = {**entry, "kind": kind, "seed": recipe["seed"], "threads": recipe["threads"]}
            # With its schema defaults, as the runner will see it (the same fingerprint).
            config = validate_stage_config("source", config)
            jobs.append((f"{kind}.{entry['name']}", config))
    return jobs


def shards_per_job(config: Mapping[str, Any]) -> int:
    """`curate.shards_per_job`, or the default that keeps the jobs at most DEFAULT_SHARD_JOBS."""
    given = config.get("shards_per_job")
    return given or math.ceil(config["shards"] / DEFAULT_SHARD_JOBS)


def shard_jobs(config: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(label ``<first>_<last>``, config) of each batch of shards [first, last)."""
    total, size = config["shards"], shards_per_job(config)
    if math.ceil(total / size) > MAX_SHARD_JOBS:
        raise RecipeError(
            f"curate.shards={total} with curate.shards_per_job={size} makes "
            f"{math.ceil(total / size)} curate_shard jobs, more than {MAX_SHARD_JOBS} (the "
            f"gather names each on its command line); set shards_per_job to at least "
            f"{math.ceil(total / MAX_SHARD_JOBS)} or leave it null"
        )
    width = max(5, len(str(total)))
    shard_config = {key: value for key, value in config.items() if key not in GATHER_ONLY}
    return [
        (
            f"{first:0{width}d}_{min(first + size, total):0{width}d}",
            {**shard_config, "first": first, "last": min(first + size, total)},
        )
        for first in range(0, total, size)
    ]
