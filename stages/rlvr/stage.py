"""GRPO of the DPO checkpoint on curate's ``data/rlvr.jsonl`` with verifier rewards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evals.verifiers import VERIFIERS
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
from stages.common.vllm import grpo_vllm_args
from stages.rlvr.rewards import verifiable_reward

_FIELDS = ("prompt", "verifier", "ground_truth")


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
    return [{key: row[key] for key in _FIELDS} for row in rows]


def build_trainer(config: dict, inputs: dict[str, Path], scratch: Path) -> Any:
    """A GRPOTrainer ready to train."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import GRPOConfig, GRPOTrainer

    source = model_dir(Path(inputs["model"]))
    tokenizer = load_tokenizer(source)
    model = AutoModelForCausalLM.from_pretrained(str(source))
    dataset = Dataset.from_list(load_prompts(Path(inputs["data"])))
    # One optimizer step sees prompts_per_step prompts x num_generations completions each.
    shared = common_args(
        {**config, "batch_size": config["prompts_per_step"] * config["num_generations"]}, scratch
    )
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
    return GRPOTrainer(
        model=model,
        reward_funcs=[verifiable_reward],
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
    )


def run(config: dict, inputs: dict[str, Path], output_dir: Path) -> dict:
    """Train for ``config['steps']`` steps; write model/ and training/ (with mean rewards)."""
    with scratch_dir(output_dir) as scratch:
        trainer = build_trainer(config, inputs, scratch)
        checkpoints.train(trainer)
        history = trainer.state.log_history
    model = trainer.model
    save_model(model, load_tokenizer(model_dir(Path(inputs["model"]))), output_dir)
    rewards = series(history, "reward")
    lengths = series(history, "completions/mean_length")
    summary = {
        "reward_start": rewards[0] if rewards else None,
        "reward_end": rewards[-1] if rewards else None,
        "reward_first_quarter": window_mean(rewards, first=True),
        "reward_last_quarter": window_mean(rewards, first=False),
        "completion_length_start": lengths[0] if lengths else None,
        "completion_length_end": lengths[-1] if lengths else None,
        "prompts": len(trainer.train_dataset),
        "parameters": count_parameters(model),
        "steps": config["steps"],
    }
    return write_training(output_dir, history, summary)
