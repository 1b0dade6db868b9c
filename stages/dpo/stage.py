"""DPO of the SFT checkpoint on curate's ``data/preference.jsonl``.

The reference is the SFT checkpoint itself: its log-probs of every chosen and rejected response
(training pairs and probe) are computed once, before the first step, by the policy while it is
still the SFT checkpoint (TRL's ``precompute_ref_log_probs``), so no second copy of the model is
loaded or run during training. They are saved in ``training/reference_logps.jsonl``, one row per
pair, keyed by the sha256 of the pair. The loss is ``dpo.loss_type``: ``sigmoid_norm`` (Tulu 3's
length-normalized DPO, the default) or standard ``sigmoid`` DPO, among TRL's others. A held-out
probe of preference pairs, never trained on, measures the reward margin the policy generalizes
to.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from stages.common.job import Input, JobContext
from stages.common.jsonl import write_jsonl
from stages.common.posttraining import Base, PostTraining, Prepared, train_posttraining
from stages.common.training import TrainingInputError, load_jsonl, series, window_mean

_FIELDS = ("prompt", "chosen", "rejected")
REFERENCE_LOGPS = "training/reference_logps.jsonl"


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
    """A DPOTrainer whose reference log-probs are computed at construction (train pairs and
    probe); once trained, it is evaluated on the held-out probe (when probe_size > 0)."""
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    train, probe = split_pairs(Path(inputs["data"]), config["probe_size"], config["seed"])
    args = DPOConfig(
        **shared,
        beta=config["beta"],
        loss_type=[config["loss_type"]],
        max_length=config["max_length"],
        # The policy before its first step is the reference: no second model.
        precompute_ref_log_probs=True,
        per_device_eval_batch_size=config["batch_size"],
    )
    trainer = DPOTrainer(
        model=base.model,
        ref_model=None,
        args=args,
        train_dataset=Dataset.from_list(train),
        eval_dataset=Dataset.from_list(probe) if probe else None,
        processing_class=base.tokenizer,
    )
    trainer.reprolm_pairs = {"train": train, "probe": probe}
    if not probe:
        return Prepared(trainer)
    # Logged as eval_* entries; at step 0 the policy equals the reference (margin 0).
    return Prepared(trainer, after_train=lambda trained: trained.evaluate())


def pair_sha256(pair: Mapping[str, Any]) -> str:
    """sha256 of a preference pair's prompt, chosen and rejected (sorted-key JSON)."""
    text = json.dumps({key: pair[key] for key in _FIELDS}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def reference_rows(trainer: Any) -> list[dict[str, Any]]:
    """One row per training pair, then per probe pair: its sha256 and reference log-probs."""
    rows = []
    splits = (("train", trainer.train_dataset), ("probe", trainer.eval_dataset))
    for split, dataset in splits:
        pairs = trainer.reprolm_pairs[split]
        if dataset is None:
            continue
        if len(dataset) != len(pairs):
            raise TrainingInputError(
                f"dpo: {len(dataset)} {split} rows after tokenization, {len(pairs)} pairs given"
            )
        chosen, rejected = dataset["ref_chosen_logps"], dataset["ref_rejected_logps"]
        for index, pair in enumerate(pairs):
            rows.append(
                {
                    "split": split,
                    "index": index,
                    "sha256": pair_sha256(pair),
                    "ref_chosen_logps": float(chosen[index]),
                    "ref_rejected_logps": float(rejected[index]),
                }
            )
    return rows


def save_reference_logps(trainer: Any, output_dir: Path) -> None:
    """training/reference_logps.jsonl (the reference log-probs the loss used)."""
    write_jsonl(output_dir / REFERENCE_LOGPS, reference_rows(trainer))


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


DPO = PostTraining(make_trainer, summarize, save_extra=save_reference_logps)


def run(config: dict, inputs: dict[str, Input], output_dir: Path, context: JobContext) -> dict:
    """Train for ``config['steps']`` steps; write model/ and training/ (with reward margins)."""
    return train_posttraining(DPO, config, inputs, output_dir, context)
