"""Fixtures of the integration tests (real Snakemake runs of the micro recipe)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from reprolm.plan import Plan, load_plan
from tests.support import MICRO, clone_workspace, run_snakemake


@pytest.fixture(scope="module")
def two_runs(micro_workspace, tmp_path_factory) -> tuple[Path, Plan, Plan]:
    """A workspace holding the micro run and a second one with half the SFT learning rate.

    Returns ``(workspace, first plan, second plan)``; the second run adds new sft, dpo, rlvr,
    evaluate and release artifacts beside the first run's, which stay untouched. Read-only.
    """
    workspace = clone_workspace(micro_workspace, tmp_path_factory.mktemp("lineage") / "ws")
    first = load_plan(workspace / MICRO)
    recipe = yaml.safe_load((workspace / MICRO).read_text())
    recipe["sft"]["learning_rate"] = 0.5 * first.get("sft", "sft").config["learning_rate"]
    changed = workspace / "config" / "micro-half-sft-lr.yaml"
    changed.write_text(yaml.safe_dump(recipe))
    run_snakemake(workspace, recipe=str(changed.relative_to(workspace)))
    return workspace, first, load_plan(changed)
