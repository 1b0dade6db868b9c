"""DPO of the SFT checkpoint on curate's ``data/preference.jsonl``.

The reference model is the same checkpoint loaded a second time from its directory (TRL would
otherwise try to fetch it from the hub by name). A held-out probe of preference pairs, never
trained on, measures the reward margin the policy generalizes to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from stages.common import checkpoints
from stages.common.training import (
    TrainingInputError,
    common_args,
    count_parameters,
    load_jsonl,
    load_tokenizer,
    model_dir,
    save_model,
    scratch_dir,
    series,
    window_mean,
    write_training,
)

_FIELDS = ("prompt", "chosen", "rejected")


def split_pairs(
    data_dir: Path, probe_size: int, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Preference pairs split (seeded) into training pairs and a held-out probe."""
    path = data_dir / "data" / "preference.jsonl"
    rows = [{key: row[key] for key in _FIELDS} for row in load_jsonl(path, _FIELDS)]
    if probe_size >= len(rows):
        raise TrainingInputError(
            f"dpo.probe_size={probe_size} leaves no training pairs: {path} holds {len(rows)} rows"
        )
    order = np.random.default_rng(seed).permutation(len(rows))
    probe = [rows[i] for i in sorted(order[:probe_size])]
    train = [rows[i] for i in sorted(order[probe_size:])]
    return train, probe


def build_trainer(config: dict, inputs: dict[str, Path], scratch: Path) -> tuple[Any, Any]:
    """A DPOTrainer ready to train and the held-out probe dataset (None when probe_size is 0)."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig, DPOTrainer

    source = model_dir(Path(inputs["model"]))
    tokenizer = load_tokenizer(source)
    model = AutoModelForCausalLM.from_pretrained(str(source))
    reference = AutoModelForCausalLM.from_pretrained(str(source))
    train, probe = split_pairs(Path(inputs["data"]), config["probe_size"], config["seed"])
    args = DPOConfig(
        **common_args(config, scratch),
        beta=config["beta"],
        loss_type=[config["loss_type"]],
        max_length=config["max_length"],
        precompute_ref_log_probs=False,
        per_device_eval_batch_size=config["batch_size"],
    )
    trainer = DPOTrainer(
        model=model,
        ref_model=reference,
        args=args,
        train_dataset=Dataset.from_list(train),
        processing_class=tokenizer,
    )
    return trainer, (Dataset.from_list(probe) if probe else None)


def run(config: dict, inputs: dict[str, Path], output_dir: Path) -> dict:
    """Train for ``config['steps']`` steps; write model/ and training/ (with reward margins)."""
    with scratch_dir(output_dir) as scratch:
        trainer, probe = build_trainer(config, inputs, scratch)
        checkpoints.train(trainer)
        if probe is not None:
            # Logged as eval_* entries; at step 0 the policy equals the reference (margin 0).
            trainer.evaluate(probe)
        history = trainer.state.log_history
    model = trainer.model
    save_model(model, load_tokenizer(model_dir(Path(inputs["model"]))), output_dir)
    margins = series(history, "rewards/margins")
    accuracies = series(history, "rewards/accuracies")
    probe_margins = series(history, "eval_rewards/margins")
    probe_accuracies = series(history, "eval_rewards/accuracies")
    losses = series(history, "loss")
    summary = {
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "margin_start": margins[0] if margins else None,
        "margin_end": margins[-1] if margins else None,
        "margin_first_quarter": window_mean(margins, first=True),
        "margin_last_quarter": window_mean(margins, first=False),
        "accuracy_start": accuracies[0] if accuracies else None,
        "accuracy_end": accuracies[-1] if accuracies else None,
        "accuracy_last_quarter": window_mean(accuracies, first=False),
        "probe_margin_end": probe_margins[-1] if probe_margins else None,
        "probe_accuracy_end": probe_accuracies[-1] if probe_accuracies else None,
        "pairs": len(trainer.train_dataset),
        "parameters": count_parameters(model),
        "steps": config["steps"],
    }
    return write_training(output_dir, history, summary)
