"""pretrain.architecture: olmoe builds an OLMoE mixture of experts; unset keeps OLMo 2."""

from __future__ import annotations

import json

import pytest

from stages.common.training import TrainingInputError
from tests.stages.test_training import run_stage, stage_config

MOE = {"num_experts": 4, "num_experts_per_tok": 2}


def test_olmoe_pretrains_and_saves_an_olmoe_checkpoint(tmp_path, tokenize_artifact):
    micro = stage_config("pretrain")
    config = stage_config(
        "pretrain", architecture="olmoe", model={**micro["model"], **MOE}, steps=4, logging_steps=2
    )
    out = tmp_path / "moe"
    summary = run_stage("pretrain", config, {"tokenize": tokenize_artifact}, out)
    saved = json.loads((out / "model" / "config.json").read_text())
    assert saved["model_type"] == "olmoe" and saved["num_experts"] == 4
    assert saved["num_experts_per_tok"] == 2
    assert summary["first_loss"] > 0 and "architecture" not in stage_config("pretrain")


@pytest.mark.parametrize(
    ("architecture", "extra", "message"),
    [
        ("olmoe", {}, r"pretrain\.architecture=olmoe needs pretrain\.model\.num_experts"),
        ("olmoe", {"num_experts": 2, "num_experts_per_tok": 3}, r"num_experts_per_tok=3 exceeds"),
        (None, MOE, r"set pretrain\.architecture: olmoe"),
    ],
)
def test_bad_moe_settings_are_named(tmp_path, tokenize_artifact, architecture, extra, message):
    micro = stage_config("pretrain")
    overrides = {"model": {**micro["model"], **extra}}
    if architecture:
        overrides["architecture"] = architecture
    with pytest.raises(TrainingInputError, match=message):
        config = stage_config("pretrain", **overrides)
        run_stage("pretrain", config, {"tokenize": tokenize_artifact}, tmp_path / "bad")
