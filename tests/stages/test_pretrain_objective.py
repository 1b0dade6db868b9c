"""The pretraining objective: OLMoE's load-balancing and router z-loss, OLMo 2's LM-head z-loss
and the WSD schedule, each checked against a hand computation on a fixed batch; the router
statistics of an MoE run (training/router_stats.jsonl) and their resume."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from stages.common import checkpoints
from stages.common.job import JobContext
from stages.common.training import TrainingInputError, common_args
from stages.pretrain.objective import Objective, RouterWindow, pretrain_trainer_class
from stages.pretrain.stage import build_model
from tests.stages.test_pretrain_moe import MOE
from tests.stages.test_training import payload_files, run_stage, stage_config

VOCAB, EXPERTS, TOP_K = 40, 4, 2
SHAPE = {
    "hidden_size": 16,
    "intermediate_size": 24,
    "num_layers": 2,
    "num_heads": 2,
    "num_kv_heads": 2,
    "max_position_embeddings": 32,
    "rope_theta": 10000.0,
    "tie_word_embeddings": True,
    "init_std": 0.3,  # large enough that the router logits are far from uniform
}


class _Tokenizer:
    eos_token_id, pad_token_id = 0, 1

    def __len__(self) -> int:
        return VOCAB


def _trainer(model, tmp_path: Path, objective: Objective, window: RouterWindow | None = None):
    import torch
    from transformers import TrainingArguments

    torch.manual_seed(0)
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    trainer = pretrain_trainer_class()(model=model, args=args)
    trainer.objective, trainer.router_window = objective, window
    return trainer


def _batch():
    import torch

    ids = torch.randint(0, VOCAB, (3, 7), generator=torch.Generator().manual_seed(1))
    return {"input_ids": ids, "labels": ids.clone()}


def _lm_loss(logits, labels):
    import torch.nn.functional as F

    return F.cross_entropy(logits[:, :-1].reshape(-1, VOCAB), labels[:, 1:].reshape(-1))


def _lse(row) -> float:
    return math.log(sum(math.exp(float(x)) for x in row))


def test_olmoe_optimizes_lm_loss_plus_weighted_load_balance_and_router_z(tmp_path):
    """loss = CE + 0.01 x LB + 0.001 x router z, every term computed here from hooked logits."""
    import torch

    torch.manual_seed(0)
    model = build_model(
        {**SHAPE, "num_experts": EXPERTS, "num_experts_per_tok": TOP_K}, _Tokenizer(), "olmoe"
    )
    captured = []
    for layer in model.model.layers:
        layer.mlp.gate.register_forward_hook(lambda mod, inp, out: captured.append(out[0]))
    window = RouterWindow()
    trainer = _trainer(model, tmp_path, Objective(router_z_loss_coef=0.001), window)
    batch = _batch()
    model.train()
    loss, outputs = trainer.compute_loss(model, dict(batch), return_outputs=True)
    router = [logits.detach() for logits in captured]
    assert len(router) == 2 and router[0].shape == (21, EXPERTS)

    # Load balance (Switch / HF): E x sum_e f_e P_e over the rows of every layer together.
    rows = sum(len(layer) for layer in router)
    counts, probs = [0.0] * EXPERTS, [0.0] * EXPERTS
    for layer in router:
        for logits in layer:
            p = [math.exp(float(x) - _lse(logits)) for x in logits]
            for e in sorted(range(EXPERTS), key=lambda e: -p[e])[:TOP_K]:
                counts[e] += 1
            probs = [a + b for a, b in zip(probs, p, strict=True)]
    lb = EXPERTS * sum(c / rows * p / rows for c, p in zip(counts, probs, strict=True))
    z = sum(sum(_lse(t) ** 2 for t in layer) / len(layer) for layer in router) / len(router)
    lm = float(_lm_loss(outputs.logits.detach(), batch["labels"]))
    assert float(outputs.aux_loss) == pytest.approx(lb, rel=1e-5)
    assert float(loss) == pytest.approx(lm + 0.01 * lb + 0.001 * z, rel=1e-5)
    assert loss.requires_grad  # the optimized value, not a logged copy

    entry = window.log_entry()
    assert entry["router/load_balance"] == pytest.approx(lb, rel=1e-5)
    assert entry["router/z_loss"] == pytest.approx(z, rel=1e-5)
    for index, layer in enumerate(router):
        tokens = [0] * EXPERTS
        for e in layer.softmax(-1).topk(TOP_K, -1).indices.reshape(-1).tolist():
            tokens[e] += 1
        assert entry[f"router/layer{index}/tokens"] == tokens and sum(tokens) == 21 * TOP_K
        p = layer.softmax(-1)
        entropy = float(-(p * p.log()).sum(-1).mean())
        assert entry[f"router/layer{index}/entropy"] == pytest.approx(entropy, rel=1e-5)
        layer_z = sum(_lse(t) ** 2 for t in layer) / len(layer)
        assert entry[f"router/layer{index}/z_loss"] == pytest.approx(layer_z, rel=1e-5)
    assert window.log_entry() == {}, "the window empties at each log entry"


def test_lm_head_z_loss_is_added_to_the_optimized_loss(tmp_path):
    import torch

    torch.manual_seed(0)
    model = build_model(SHAPE, _Tokenizer())
    batch = _batch()
    plain = _trainer(model, tmp_path, Objective())
    with torch.no_grad():
        base, outputs = plain.compute_loss(model, dict(batch), return_outputs=True)
        zl = _trainer(model, tmp_path, Objective(z_loss_coef=1e-2))
        loss = zl.compute_loss(model, dict(batch))
    logits = outputs.logits
    assert float(base) == pytest.approx(float(_lm_loss(logits, batch["labels"])), rel=1e-6)
    predicted = [row for sequence in logits for row in sequence[:-1]]  # the last has no label
    z = sum(_lse(row) ** 2 for row in predicted) / len(predicted)
    assert z > 0.1
    assert float(loss) == pytest.approx(float(base) + 1e-2 * z, rel=1e-6)


def test_wsd_learning_rate_follows_the_hand_computed_schedule(tmp_path):
    """10 steps, 2 warmup, decay_fraction 0.3 (3 steps), min_lr_ratio 0.1, peak 1e-2."""
    import torch

    config = stage_config(
        "pretrain", steps=10, warmup_steps=2, learning_rate=1e-2, lr_scheduler="wsd",
        decay_fraction=0.3, min_lr_ratio=0.1,
    )  # fmt: skip
    from transformers import TrainingArguments

    torch.manual_seed(0)
    model = build_model(SHAPE, _Tokenizer())
    args = TrainingArguments(**common_args(config, tmp_path, JobContext()))
    trainer = pretrain_trainer_class()(model=model, args=args)
    trainer.create_optimizer_and_scheduler(num_training_steps=10)
    used = []  # the rate of optimizer step 1..10
    for _ in range(10):
        used.append(trainer.optimizer.param_groups[0]["lr"])
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
    peak, low = 1e-2, 1e-3
    # Warmup from min to peak over steps 1-2, stable 3-7, then linear towards min over 8-10.
    expected = [low, (peak + low) / 2, *[peak] * 5, peak, low + (peak - low) * 2 / 3]
    expected.append(low + (peak - low) / 3)
    assert used == pytest.approx(expected, rel=1e-9)
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(low)  # after the last step


def test_schedule_key_selects_the_same_wsd_as_lr_scheduler(tmp_path):
    """``schedule: wsd`` (OLMo 2's name) gives the TrainingArguments ``lr_scheduler: wsd`` gives,
    and wins over the block's ``lr_scheduler``."""
    by_name = stage_config("pretrain", schedule="wsd", decay_fraction=0.3, lr_scheduler="cosine")
    by_old = stage_config("pretrain", lr_scheduler="wsd", decay_fraction=0.3)
    args = common_args(by_name, tmp_path, JobContext())
    assert args["lr_scheduler_type"] == "warmup_stable_decay"
    assert {k: args[k] for k in ("lr_scheduler_type", "warmup_steps", "lr_scheduler_kwargs")} == {
        k: v
        for k, v in common_args(by_old, tmp_path, JobContext()).items()
        if k in ("lr_scheduler_type", "warmup_steps", "lr_scheduler_kwargs")
    }


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"lr_scheduler": "wsd"}, r"lr_scheduler: wsd needs decay_fraction"),
        ({"schedule": "wsd"}, r"lr_scheduler: wsd needs decay_fraction"),
        ({"lr_scheduler": "wsd", "decay_fraction": 0.9, "warmup_steps": 2}, r"exceed steps"),
    ],
)
def test_bad_wsd_settings_are_named(tmp_path, overrides, message):
    with pytest.raises(TrainingInputError, match=message):
        common_args(stage_config("pretrain", **overrides), tmp_path, JobContext())


def test_router_coefficients_need_olmoe(tmp_path, tokenize_artifact):
    config = stage_config("pretrain", router_z_loss_coef=0.001)
    with pytest.raises(TrainingInputError, match=r"router_z_loss_coef is for MoE models"):
        run_stage("pretrain", config, {"tokenize": tokenize_artifact}, tmp_path / "bad")


def _moe_config(**overrides):
    micro = stage_config("pretrain")
    return stage_config(
        "pretrain", architecture="olmoe", model={**micro["model"], **MOE}, steps=6,
        logging_steps=2, **overrides,
    )  # fmt: skip


def test_moe_run_writes_router_stats_and_resumes_them_bitwise(tmp_path, tokenize_artifact):
    """router_stats.jsonl: a row per log entry, tokens = top-k x windows x seq_len per step;
    a run resumed at step 3 (inside a logging window) writes the same bytes."""
    config = _moe_config()
    inputs = {"tokenize": tokenize_artifact}
    store = tmp_path / "checkpoints"

    def context() -> JobContext:
        return JobContext(checkpoint_dir=store, checkpoint_every=3, checkpoint_keep=10)

    run_stage("pretrain", config, inputs, tmp_path / "first", context())
    first = tmp_path / "first"
    rows = [json.loads(line) for line in (first / "training/router_stats.jsonl").open()]
    assert [row["step"] for row in rows] == [2, 4, 6]
    per_window = 2 * config["batch_size"] * config["seq_len"] * MOE["num_experts_per_tok"]
    for row in rows:
        assert [layer["layer"] for layer in row["layers"]] == [0]
        layer = row["layers"][0]
        assert sum(layer["tokens"]) == per_window and len(layer["tokens"]) == 4
        assert 0 < layer["entropy"] <= math.log(4) and layer["z_loss"] > 0
        assert row["load_balance"] >= 1.0 - 1e-6  # E x sum f P is at least 1 (top-k counts)
    history = json.loads((first / "training/log_history.json").read_text())
    logged = [e for e in history if "loss" in e]
    assert all("router/layer0/entropy" in e and "router/z_loss" in e for e in logged)
    assert not [k for e in history for k, v in e.items() if isinstance(v, list)]

    for step, path in checkpoints.checkpoints(store):
        if step > 3:
            shutil.rmtree(path)
    resumed = context()
    run_stage("pretrain", config, inputs, tmp_path / "resumed", resumed)
    assert resumed.resumed_step == 3
    assert payload_files(tmp_path / "resumed") == payload_files(first)


def test_z_loss_and_wsd_change_the_run_as_configured(tmp_path, tokenize_artifact):
    """A dense run with wsd and z-loss logs the schedule's rates (lr after steps 3, 6, ...)."""
    config = stage_config(
        "pretrain", lr_scheduler="wsd", decay_fraction=0.5, z_loss_coef=1e-4, learning_rate=1e-3,
    )  # fmt: skip
    run_stage("pretrain", config, {"tokenize": tokenize_artifact}, tmp_path / "out")
    history = json.loads((tmp_path / "out/training/log_history.json").read_text())
    rates = {e["step"]: e["learning_rate"] for e in history if "learning_rate" in e}
    # 12 steps, warmup 2, stable 4, decay 6 (steps 7-12, from the peak towards 0); the rate
    # logged at step s is the one step s used.
    assert rates == pytest.approx({3: 1e-3, 6: 1e-3, 9: 1e-3 * 4 / 6, 12: 1e-3 / 6})
    assert not (tmp_path / "out/training/router_stats.jsonl").exists()
