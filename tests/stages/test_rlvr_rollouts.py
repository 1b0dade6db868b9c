"""training/rollouts.jsonl of the rlvr stage: one row per rollout per optimizer step, rewards
and advantages as GRPO computed them, the same bytes on a rerun and after a resume; the KL and
per-verifier rewards in the summary.

A random tiny model (``save_random_tiny_model``) stands in for the DPO checkpoint: the file's
contract does not depend on a trained policy. Such a model earns no real reward, so every
verifier is swapped for a graded one (a completion's length mod 3, halved) for the module: the
reward function looks verifiers up by name, and groups then hold differing rewards.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evals import verifiers
from evals.verifiers import get_verifier
from stages.common import checkpoints
from stages.common.job import JobContext
from stages.rlvr.rollouts import FILE
from tests.stages.micro import save_random_tiny_model
from tests.stages.test_training import payload_files, read_json, run_stage, stage_config

pytestmark = pytest.mark.slow

STEPS, EVERY = 3, 2
FIELDS = {
    "step",
    "group",
    "prompt",
    "completion",
    "verifier",
    "ground_truth",
    "reward",
    "advantage",
}


def rows(artifact: Path) -> list[dict[str, Any]]:
    text = (artifact / FILE).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def graded(response: str, ground_truth: str) -> float:
    return (len(response) % 3) / 2


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tokenize_artifact, curate_artifact) -> Any:
    """The same config run plainly, then with checkpoints, then resumed from step EVERY."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(verifiers.VERIFIERS):
            patch.setitem(verifiers.VERIFIERS, name, graded)
        yield _runs(tmp_path_factory, tokenize_artifact, curate_artifact)


def _runs(tmp_path_factory, tokenize_artifact, curate_artifact) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("rollouts")
    save_random_tiny_model(tokenize_artifact, root / "upstream" / "model")
    inputs = {"model": root / "upstream", "data": Path(curate_artifact)}
    config = stage_config("rlvr", steps=STEPS, logging_steps=1, temperature=1.0)
    store = root / "checkpoints"

    def context() -> JobContext:
        return JobContext(checkpoint_dir=store, checkpoint_every=EVERY, checkpoint_keep=10)

    metrics = run_stage("rlvr", config, inputs, root / "plain")
    run_stage("rlvr", config, inputs, root / "checkpointed", context())
    assert [step for step, _ in checkpoints.checkpoints(store)] == [EVERY]
    resumed = context()
    run_stage("rlvr", config, inputs, root / "resumed", resumed)
    assert resumed.resumed_step == EVERY
    return {"root": root, "config": config, "metrics": metrics}


def test_one_row_per_rollout_with_every_field(runs):
    config, found = runs["config"], rows(runs["root"] / "plain")
    per_step = config["prompts_per_step"] * config["num_generations"]
    assert len(found) == STEPS * per_step
    assert all(set(row) == FIELDS for row in found)
    assert [row["step"] for row in found] == [
        s for s in range(1, STEPS + 1) for _ in range(per_step)
    ]
    groups = [row["group"] for row in found[:per_step]]
    generations = config["num_generations"]
    assert groups == [g for g in range(config["prompts_per_step"]) for _ in range(generations)]
    for start in range(0, len(found), config["num_generations"]):  # a group shares its prompt
        group = found[start : start + config["num_generations"]]
        assert len({(r["prompt"], r["verifier"], r["ground_truth"]) for r in group}) == 1
    assert all(row["prompt"] and isinstance(row["completion"], str) for row in found)


def test_rewards_are_the_verifier_on_the_saved_completion(runs):
    found = rows(runs["root"] / "plain")
    assert len({row["reward"] for row in found}) > 1
    for row in found:
        assert get_verifier(row["verifier"]) is graded
        expected = float(get_verifier(row["verifier"])(row["completion"], row["ground_truth"]))
        assert row["reward"] == expected, row


def test_advantages_are_the_group_normalized_rewards(runs):
    """TRL's scale_rewards='group': (r - group mean) / (Bessel std of the group + 1e-4), float32."""
    import torch

    config, found = runs["config"], rows(runs["root"] / "plain")
    assert config["scale_rewards"] == "group"
    rewards = torch.tensor([row["reward"] for row in found], dtype=torch.float32)
    grouped = rewards.view(-1, config["num_generations"])
    mean = grouped.mean(dim=1, keepdim=True)
    std = grouped.std(dim=1, keepdim=True)  # unbiased, as TRL's nanstd
    expected = ((grouped - mean) / (std + 1e-4)).flatten().tolist()
    assert [row["advantage"] for row in found] == pytest.approx(expected, abs=1e-6)
    assert any(row["advantage"] != 0 for row in found), "no group had differing rewards"


def test_the_same_bytes_on_a_rerun_and_after_a_resume(runs):
    root = runs["root"]
    plain = (root / "plain" / FILE).read_bytes()
    assert (root / "checkpointed" / FILE).read_bytes() == plain
    assert (
        root / "resumed" / FILE
    ).read_bytes() == plain  # steps 1..EVERY came from the checkpoint
    assert payload_files(root / "resumed") == payload_files(root / "plain")


def test_summary_carries_kl_and_per_verifier_rewards(runs):
    root, metrics = runs["root"], runs["metrics"]
    summary = read_json(root / "plain" / "training" / "summary.json")
    assert summary == metrics
    history = read_json(root / "plain" / "training" / "log_history.json")
    kl = [entry["kl"] for entry in history if "kl" in entry]
    assert len(kl) == STEPS and summary["kl_start"] == kl[0] and summary["kl_end"] == kl[-1]
    found = rows(root / "plain")
    assert summary["rollouts"] == len(found)
    for verifier in {row["verifier"] for row in found}:
        last = [r["reward"] for r in found if r["verifier"] == verifier and r["step"] == STEPS]
        if last:
            assert summary[f"reward_{verifier}_end"] == pytest.approx(sum(last) / len(last))
        assert f"reward_{verifier}_mean" in summary


@pytest.mark.parametrize("scale", ["batch", "none"])
def test_advantages_follow_scale_rewards(tokenize_artifact, curate_artifact, tmp_path, scale):
    """batch: the group's mean, the step's std; none: the group's mean only."""
    import torch

    save_random_tiny_model(tokenize_artifact, tmp_path / "upstream" / "model")
    inputs = {"model": tmp_path / "upstream", "data": Path(curate_artifact)}
    config = stage_config("rlvr", steps=2, temperature=1.0, beta=0.0, scale_rewards=scale)
    with pytest.MonkeyPatch.context() as patch:
        for name in list(verifiers.VERIFIERS):
            patch.setitem(verifiers.VERIFIERS, name, graded)
        metrics = run_stage("rlvr", config, inputs, tmp_path / "out")
    assert "kl_start" not in metrics  # beta 0: GRPO logs no KL
    found = rows(tmp_path / "out")
    generations = config["num_generations"]
    for step in (1, 2):
        step_rows = [row for row in found if row["step"] == step]
        rewards = torch.tensor([row["reward"] for row in step_rows], dtype=torch.float32)
        mean = rewards.view(-1, generations).mean(dim=1).repeat_interleave(generations)
        expected = rewards - mean
        if scale == "batch":
            expected = expected / (rewards.std() + 1e-4)
        assert [r["advantage"] for r in step_rows] == pytest.approx(expected.tolist(), abs=1e-6)
