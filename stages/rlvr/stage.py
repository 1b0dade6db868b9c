"""GRPO of the DPO checkpoint on curate's ``data/rlvr.jsonl`` with verifier rewards."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evals.verifiers import VERIFIERS
from stages.common.job import Input, JobContext
from stages.common.posttraining import Base, PostTraining, Prepared, train_posttraining
from stages.common.training import TrainingInputError, load_jsonl, series, window_mean
from stages.common.vllm import grpo_vllm_args
from stages.rlvr.rewards import verifiable_reward
from stages.rlvr.rollouts import trainer_class, verifier_means, write_rollouts

_FIELDS = ("prompt", "verifier", "ground_truth")


def unknown_instructions(ground_truth: str) -> list[str]:
    """IFEval instruction ids of a ground truth without a checker (the JSON must parse)."""
    import json

    from evals.ifeval import CHECKERS

    try:
        ids = json.loads(ground_truth)["instruction_id_list"]
    except (ValueError, TypeError, KeyError):
        return ["<ground_truth is not JSON with instruction_id_list>"]
    return sorted(set(map(str, ids)) - set(CHECKERS))


def load_prompts(data_dir: Path) -> list[dict[str, Any]]:
    """Rows of data/rlvr.jsonl; every verifier must be registered."""
    path = data_dir / "data" / "rlvr.jsonl"
    rows = load_jsonl(path, _FIELDS)
    for number, row in enumerate(rows, start=1):
        if row["verifier"] not in VERIFIERS:
            known = ", ".join(sorted(VERIFIERS))
            raise TrainingInputError(
                f"{path}:{number}: unknown verifier {row['verifier']!r}; known: {known}"
            )
        if row["verifier"] == "ifeval":  # every instruction must have a checker before training
            unknown = unknown_instructions(row["ground_truth"])
            if unknown:
                raise TrainingInputError(
                    f"{path}:{number}: ifeval ground_truth has unknown instruction ids: "
                    f"{', '.join(unknown)}"
                )
    return [{key: row[key] for key in _FIELDS} for row in rows]


def make_trainer(
    config: Mapping[str, Any], inputs: Mapping[str, Input], base: Base, shared: dict[str, Any]
) -> Prepared:
    """A GRPOTrainer with the verifier reward that records its rollouts."""
    from datasets import Dataset
    from trl import GRPOConfig

    dataset = Dataset.from_list(load_prompts(Path(inputs["data"])))
    args = GRPOConfig(
        **shared,
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
        **grpo_vllm_args(config),
    )
    trainer = trainer_class()(
        model=base.model,
        reward_funcs=[verifiable_reward],
        args=args,
        train_dataset=dataset,
        processing_class=base.tokenizer,
    )
    return Prepared(trainer)


def verifier_rewards(rollouts: list[dict[str, Any]]) -> dict[str, float]:
    """reward_<verifier>_start / _end / _mean: that verifier's mean reward in the first and last
    step it scored, and over all its rollouts (from training/rollouts.jsonl's rows)."""
    out = {}
    for verifier, points in verifier_means(rollouts).items():
        rewards = [row["reward"] for row in rollouts if row["verifier"] == verifier]
        out[f"reward_{verifier}_start"] = points[0][1]
        out[f"reward_{verifier}_end"] = points[-1][1]
        out[f"reward_{verifier}_mean"] = sum(rewards) / len(rewards)
    return out


def summarize(history: list[dict[str, Any]], trainer: Any) -> dict[str, Any]:
    rewards = series(history, "reward")
    lengths = series(history, "completions/mean_length")
    kl = series(history, "kl")  # logged only when beta > 0
    return {
        "kl_start": kl[0] if kl else None,
        "kl_end": kl[-1] if kl else None,
        "kl_max": max(kl) if kl else None,
        **verifier_rewards(trainer.rollouts),
        "rollouts": len(trainer.rollouts),
        "reward_start": rewards[0] if rewards else None,
        "reward_end": rewards[-1] if rewards else None,
        "reward_first_quarter": window_mean(rewards, first=True),
        "reward_last_quarter": window_mean(rewards, first=False),
        "completion_length_start": lengths[0] if lengths else None,
        "completion_length_end": lengths[-1] if lengths else None,
        "prompts": len(trainer.train_dataset),
    }


def global_batch(config: Mapping[str, Any]) -> int:
    """One optimizer step sees prompts_per_step prompts x num_generations completions each."""
    return config["prompts_per_step"] * config["num_generations"]


RLVR = PostTraining(make_trainer, summarize, global_batch=global_batch, save_extra=write_rollouts)


def run(config: dict, inputs: dict[str, Input], output_dir: Path, context: JobContext) -> dict:
    """Train for ``config['steps']`` steps; write model/ and training/ (with mean rewards)."""
    return train_posttraining(RLVR, config, inputs, output_dir, context)
