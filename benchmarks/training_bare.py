"""The bare baselines of benchmarks/training.py: the stage's model and data, nothing else.

* ``pretrain``: a plain PyTorch loop: ``stages.pretrain.stage.build_model`` on the windows of
  ``stages.pretrain.data`` in the data order, AdamW (the Trainer's groups: no decay on norms),
  the recipe's schedule (``transformers.get_scheduler``), gradient clipping; no Trainer.
* ``sft`` / ``dpo`` / ``rlvr``: the TRL trainer class the stage uses, with the same config fields
  (``stages.common.training.common_args`` plus the stage's own), ``trainer.train()`` and
  nothing more: no progress callback, checkpoints, held-out probe, saved model or manifest.
  Both variants get the stage's start-up settings (``stages.common.startup``: ``common_args``
  sets the lazy DeepSpeed check, ``train_frozen`` freezes the heap before ``trainer.train()`` as
  ``stages.common.checkpoints.train`` does), so the ratio is the stage's own code, not the
  ~0.45 s ``gc.collect`` a stock Trainer runs at the start of training.

Each ``bare_<stage>(config, inputs, scratch, probe)`` trains once and returns the logged losses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from stages.common.job import JobContext
from stages.common.startup import freeze_heap
from stages.common.training import TrainingInputError, common_args, load_tokenizer, model_dir


def bare_pretrain(config: Mapping[str, Any], inputs: Mapping[str, Path], scratch: Path, probe):
    """A plain PyTorch loop on the stage's model, data order and optimizer settings; returns the
    loss of every step."""
    import torch
    from transformers import get_scheduler

    from stages.common.training import schedule_args
    from stages.pretrain.data import make_dataset, open_order, open_shards
    from stages.pretrain.objective import lm_z_loss
    from stages.pretrain.stage import build_model

    if config.get("architecture", "olmo2") != "olmo2":
        raise TrainingInputError("benchmarks/training.py: the bare loop covers olmo2 models only")
    tokenize_dir = Path(inputs["tokenize"])
    tokenizer = load_tokenizer(tokenize_dir / "tokenizer")
    seq_len, steps, batch = config["seq_len"], config["steps"], config["batch_size"]
    shards = open_shards(tokenize_dir, len(tokenizer))
    order = open_order(tokenize_dir, shards, seq_len, steps * batch)
    dataset, _ = make_dataset(shards, seq_len, order)
    model = build_model(config["model"], tokenizer)
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [  # the Trainer's rule for OLMo 2 (no biases): no weight decay on the norm weights
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": config["weight_decay"]},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(
        groups,
        lr=config["learning_rate"],
        betas=(config["adam_beta1"], config["adam_beta2"]),
        eps=config["adam_epsilon"],
    )
    schedule = schedule_args(config)
    scheduler = get_scheduler(
        schedule["lr_scheduler_type"], optimizer, num_warmup_steps=schedule["warmup_steps"],
        num_training_steps=steps, scheduler_specific_kwargs=schedule.get("lr_scheduler_kwargs"),
    )  # fmt: skip
    z_coef = float(config.get("z_loss_coef", 0.0))
    losses = []
    freeze_heap()  # as the stage's train() does before its loop
    with probe.training(model):
        model.train()
        windows = iter(dataset)
        for _ in range(steps):
            rows = [next(windows) for _ in range(batch)]
            input_ids = torch.stack([row["input_ids"] for row in rows])
            labels = torch.stack([row["labels"] for row in rows])
            items = (labels[..., 1:] != -100).sum()  # the Trainer's num_items_in_batch
            outputs = model(input_ids=input_ids, labels=labels, num_items_in_batch=items)
            loss = outputs.loss
            if z_coef:
                loss = loss + z_coef * lm_z_loss(outputs.logits, labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, config["max_grad_norm"])
            optimizer.step()
            scheduler.step()
            model.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
    every = config["logging_steps"]
    return [sum(losses[i : i + every]) / every for i in range(0, steps - every + 1, every)]


def _base(inputs: Mapping[str, Path]) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM

    source = model_dir(Path(inputs["model"]))
    tokenizer = load_tokenizer(source)
    model = AutoModelForCausalLM.from_pretrained(
        str(source), local_files_only=True, use_safetensors=True
    )
    return tokenizer, model


def train_frozen(trainer: Any) -> None:
    """``trainer.train()`` after the stage's ``freeze_heap`` (the same start-up settings)."""
    freeze_heap()
    trainer.train()


def _losses(trainer: Any) -> list[float]:
    return [float(e["loss"]) for e in trainer.state.log_history if "loss" in e]


def bare_sft(config: Mapping[str, Any], inputs: Mapping[str, Path], scratch: Path, probe):
    """SFTTrainer with the stage's fields (assistant-only loss), train() alone."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from stages.common.training import end_of_turn
    from stages.sft.stage import load_messages

    tokenizer, model = _base(inputs)
    args = SFTConfig(
        **common_args(config, scratch, JobContext()),
        max_length=config["max_length"],
        packing=False,
        assistant_only_loss=True,
        eos_token=end_of_turn(tokenizer),
        dataset_num_proc=None,
        shuffle_dataset=False,
    )
    dataset = Dataset.from_list(load_messages(Path(inputs["data"])))
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    train_frozen(trainer)
    return _losses(trainer)


def bare_dpo(config: Mapping[str, Any], inputs: Mapping[str, Path], scratch: Path, probe):
    """DPOTrainer on the stage's training pairs (reference log-probs precomputed, as the stage
    does), train() alone: no held-out probe, no saved reference log-probs."""
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from stages.dpo.stage import split_pairs

    train, _ = split_pairs(Path(inputs["data"]), config["probe_size"], config["seed"])
    tokenizer, model = _base(inputs)
    args = DPOConfig(
        **common_args(config, scratch, JobContext()),
        beta=config["beta"],
        loss_type=[config["loss_type"]],
        max_length=config["max_length"],
        precompute_ref_log_probs=True,
        per_device_eval_batch_size=config["batch_size"],
    )
    trainer = DPOTrainer(
        model=model,
        ref_model=None,
        args=args,
        train_dataset=Dataset.from_list(train),
        processing_class=tokenizer,
    )
    train_frozen(trainer)
    return _losses(trainer)


def bare_rlvr(config: Mapping[str, Any], inputs: Mapping[str, Path], scratch: Path, probe):
    """GRPOTrainer with the stage's fields and verifier reward, train() alone."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from stages.common.vllm import grpo_vllm_args
    from stages.rlvr.rewards import verifiable_reward
    from stages.rlvr.stage import global_batch, load_prompts

    tokenizer, model = _base(inputs)
    args = GRPOConfig(
        **common_args({**config, "batch_size": global_batch(config)}, scratch, JobContext()),
        num_generations=config["num_generations"],
        max_completion_length=config["max_completion_length"],
        temperature=config["temperature"],
        top_p=1.0,
        top_k=0,
        beta=config["beta"],
        epsilon=config["epsilon"],
        loss_type=config["loss_type"],
        scale_rewards=config["scale_rewards"],
        num_iterations=1,
        steps_per_generation=1,
        disable_dropout=True,
        log_completions=False,
        **grpo_vllm_args(dict(config)),
    )
    dataset = Dataset.from_list(load_prompts(Path(inputs["data"])))
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[verifiable_reward],
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    train_frozen(trainer)
    return _losses(trainer)


BARE: dict[str, Callable[..., list[float]]] = {
    "pretrain": bare_pretrain,
    "sft": bare_sft,
    "dpo": bare_dpo,
    "rlvr": bare_rlvr,
}
