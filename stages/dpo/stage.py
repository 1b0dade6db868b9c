"""DPO of the SFT checkpoint on curate's ``data/preference.jsonl``.

The reference model is the same checkpoint loaded a second time from its directory (TRL would
otherwise try to fetch it from the hub by name). A held-out probe of preference pairs, never
trained on, measures the reward margin the policy generalizes to.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from stages.common.job import Input, JobContext
from stages.common.posttraining import Base, PostTraining, Prepared, train_posttraining
from stages.common.training import TrainingInputError, load_jsonl, series, window_mean

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


def make_trainer(
    config: Mapping[str, Any], inputs: Mapping[str, Input], base: Base, shared: dict[str, Any]
) -> Prepared:
    """A DPOTrainer; once trained, it is evaluated on the held-out probe (when probe_size > 0)."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig, DPOTrainer

    reference = AutoModelForCausalLM.from_pretrained(
        str(base.source), local_files_only=True, use_safetensors=True
    )
    train, probe = split_pairs(Path(inputs["data"]), config["probe_size"], config["seed"])
    args = DPOConfig(
        **shared,
        beta=config["beta"],
        loss_type=[config["loss_type"]],
        max_length=config["max_length"],
        precompute_ref_log_probs=False,
        per_device_eval_batch_size=config["batch_size"],
    )
    trainer = DPOTrainer(
        model=base.model,
        ref_model=reference,
        args=args,
        train_dataset=Dataset.from_list(train),
        processing_class=base.tokenizer,
    )
    if not probe:
        return Prepared(trainer)
    probe_set = Dataset.from_list(probe)
    # Logged as eval_* entries; at step 0 the policy equals the reference (margin 0).
    return Prepared(trainer, after_train=lambda trained: trained.evaluate(probe_set))


def summarize(history: list[dict[str, Any]], trainer: Any) -> dict[str, Any]:
    margins = series(history, "rewards/margins")
    accuracies = series(history, "rewards/accuracies")
    probe_margins = series(history, "eval_rewards/margins")
    probe_accuracies = series(history, "eval_rewards/accuracies")
    losses = series(history, "loss")
    return {
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
    }


DPO = PostTraining(make_trainer, summarize)


def run(config: dict, inputs: dict[str, Input], output_dir: Path, context: JobContext) -> dict:
    """Train for ``config['steps']`` steps; write model/ and training/ (with reward margins)."""
    return train_posttraining(DPO, config, inputs, output_dir, context)
