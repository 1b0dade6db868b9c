"""benchmarks/training.py compares like with like: its bare pretrain loop trains the stage's model
on the stage's data with the stage's optimizer, so both log the same losses step by step."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import numpy as np

from reprolm.recipe import validate_stage_config
from stages.common.job import JobContext, as_inputs

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from training_bare import bare_pretrain  # noqa: E402
from training_child import Probe  # noqa: E402

from tests.stages.test_training import MICRO  # noqa: E402

PRETRAIN = {
    **MICRO["pretrain"],
    "steps": 4,
    "warmup_steps": 1,
    "logging_steps": 1,  # one logged loss per step: the bare loop's must match each
    "z_loss_coef": 1e-4,
    "seed": 3,
    "threads": 1,
}


def _seed(config: dict) -> None:
    import torch

    random.seed(config["seed"])
    np.random.seed(config["seed"])
    torch.manual_seed(config["seed"])
    torch.set_num_threads(config["threads"])


def test_bare_pretrain_loop_logs_the_stage_losses(tmp_path, tokenize_artifact) -> None:
    from stages.pretrain.stage import run

    config = validate_stage_config("pretrain", json.loads(json.dumps(PRETRAIN)))
    inputs = {"tokenize": Path(tokenize_artifact)}
    _seed(config)
    (tmp_path / "out").mkdir()
    run(dict(config), as_inputs(inputs), tmp_path / "out", JobContext())
    history = json.loads((tmp_path / "out" / "training" / "log_history.json").read_text())
    stage_losses = [entry["loss"] for entry in history if "loss" in entry]

    _seed(config)
    probe = Probe()
    bare_losses = bare_pretrain(config, inputs, tmp_path, probe)

    assert len(stage_losses) == len(bare_losses) == config["steps"]
    # Step 1 checks model and data; steps 2-4 the optimizer, schedule, clipping and z-loss.
    assert np.allclose(bare_losses, stage_losses, rtol=1e-5, atol=0), (bare_losses, stage_losses)
    assert bare_losses[0] != bare_losses[-1]
    assert probe.tokens == config["steps"] * config["batch_size"] * config["seq_len"]
    assert probe.train_s > 0
