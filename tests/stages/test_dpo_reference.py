"""DPO's reference log-probs, computed once and saved (training/reference_logps.jsonl), equal a
direct forward pass of the reference model; the length-normalized (Tulu 3 DPO-norm) and the
standard sigmoid loss equal hand computations on a fixed batch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stages.common.job import JobContext, as_inputs
from stages.common.posttraining import prepare
from stages.dpo.stage import DPO, REFERENCE_LOGPS, pair_sha256, split_pairs
from tests.stages.micro import save_random_tiny_model
from tests.stages.test_training import run_stage, stage_config


@pytest.fixture(scope="module")
def upstream(tmp_path_factory, tokenize_artifact) -> Path:
    """A random tiny OLMo 2 checkpoint artifact (model/) to run DPO from."""
    root = tmp_path_factory.mktemp("dpo-upstream")
    save_random_tiny_model(tokenize_artifact, root / "model")
    return root


def _sequence_logps(model, ids: list[int], completion: list[int]) -> float:
    """Sum of log p(token) over the completion tokens of one unpadded sequence."""
    import torch

    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].float()
    logps = logits[:-1].log_softmax(-1).gather(1, torch.tensor(ids[1:]).unsqueeze(1))[:, 0]
    return float((logps * torch.tensor(completion[1:], dtype=torch.float32)).sum())


def test_saved_reference_logps_equal_a_direct_forward_of_the_reference(
    upstream, curate_artifact, tmp_path
):
    from transformers import AutoModelForCausalLM

    config = stage_config("dpo", steps=2, logging_steps=1, probe_size=4)
    inputs = {"model": upstream, "data": Path(curate_artifact)}
    run_stage("dpo", config, inputs, tmp_path / "out", JobContext())
    rows = [json.loads(line) for line in (tmp_path / "out" / REFERENCE_LOGPS).open()]
    train, probe = split_pairs(Path(curate_artifact), 4, config["seed"])
    assert [r["split"] for r in rows] == ["train"] * len(train) + ["probe"] * len(probe)
    assert [r["sha256"] for r in rows] == [pair_sha256(p) for p in train + probe]

    # Token ids as TRL tokenized them; log-probs by a fresh load of the reference, one unpadded
    # sequence at a time (the trainer ran padded batches through the policy before step 1).
    tokenized = prepare(DPO, config, as_inputs(inputs), tmp_path / "scratch", JobContext())
    dataset = tokenized.trainer.train_dataset
    reference = AutoModelForCausalLM.from_pretrained(str(upstream / "model")).eval()
    limit = config["max_length"]
    for index in range(0, len(train), 7):  # a spread of pairs keeps the test fast
        row = dataset[index]
        for side in ("chosen", "rejected"):
            ids = (row["prompt_ids"] + row[f"{side}_ids"])[:limit]
            mask = ([0] * len(row["prompt_ids"]) + [1] * len(row[f"{side}_ids"]))[:limit]
            direct = _sequence_logps(reference, ids, mask)
            assert rows[index][f"ref_{side}_logps"] == pytest.approx(direct, rel=1e-4, abs=1e-3)
            assert rows[index][f"ref_{side}_logps"] == pytest.approx(row[f"ref_{side}_logps"])
    assert tokenized.trainer.ref_model is None, "no second copy of the model"


@pytest.mark.parametrize("loss_type", ["sigmoid_norm", "sigmoid"])
def test_dpo_loss_equals_the_hand_computed_value(upstream, curate_artifact, tmp_path, loss_type):
    """loss = mean -log sigmoid(beta x delta), delta = (pi_c - ref_c) - (pi_r - ref_r) with the
    log-prob sums divided by the response's token count for sigmoid_norm (Tulu 3's DPO-norm)."""
    import math

    import torch

    config = stage_config("dpo", loss_type=loss_type, beta=5.0, probe_size=0)
    inputs = as_inputs({"model": upstream, "data": Path(curate_artifact)})
    trainer = prepare(DPO, config, inputs, tmp_path / "scratch", JobContext()).trainer
    model = trainer.model
    torch.manual_seed(3)
    with torch.no_grad():  # the policy moves away from the reference the log-probs came from
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    examples = [trainer.train_dataset[i] for i in range(3)]
    batch = trainer.data_collator(examples)
    model.eval()
    with torch.no_grad():
        loss = float(trainer.compute_loss(model, dict(batch)))

    terms = []
    limit = config["max_length"]
    for row in examples:
        score = {}
        for side in ("chosen", "rejected"):
            ids = (row["prompt_ids"] + row[f"{side}_ids"])[:limit]
            mask = ([0] * len(row["prompt_ids"]) + [1] * len(row[f"{side}_ids"]))[:limit]
            ratio = _sequence_logps(model, ids, mask) - row[f"ref_{side}_logps"]
            score[side] = ratio / sum(mask) if loss_type == "sigmoid_norm" else ratio
        delta = 5.0 * (score["chosen"] - score["rejected"])
        terms.append(-math.log(1 / (1 + math.exp(-delta))))
    expected = sum(terms) / len(terms)
    assert abs(expected - math.log(2)) > 1e-3, "the perturbation must move the loss off log 2"
    assert loss == pytest.approx(expected, rel=1e-4)
