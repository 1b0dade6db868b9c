"""``training/rollouts.jsonl``: every GRPO rollout of every optimizer step.

One row per completion: the optimizer step it was trained in, its prompt group, the prompt and
completion text, the row's verifier and ground truth, the reward that verifier gave and the
advantage GRPO trained on. Prompt, completion, reward and advantage are TRL's own values, read
from what ``GRPOTrainer._generate_and_score_completions`` has just logged (``self._logs``,
gathered over all processes, in generation order: ``num_generations`` completions per prompt,
before the shuffle into micro-batches), so the advantage is exactly the one in the loss under
the configured ``scale_rewards`` (group: ``(r - mean) / (std + 1e-4)`` with the group's
Bessel-corrected std; batch: the batch's std; none: ``r - mean``). Private attributes of the
pinned TRL (1.16); tests/stages/test_rlvr_rollouts.py recomputes both reward and advantage.

The rows so far travel in each checkpoint (``accumulator_state``, restored by
``stages.common.checkpoints``), so a resumed run writes the uninterrupted run's file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stages.common.jsonl import write_jsonl
from stages.rlvr.rewards import completion_text, verifiable_reward

FILE = "training/rollouts.jsonl"
REWARD = verifiable_reward.__name__  # TRL names a reward function's columns after it


def prompt_text(prompt: Any, tokenizer: Any) -> str:
    """A plain prompt as it is; a conversational one as the chat template renders it for TRL."""
    if isinstance(prompt, str):
        return prompt
    return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)


def _last(values: Any, count: int, name: str) -> list[Any]:
    values = list(values)
    if len(values) < count:
        raise RuntimeError(
            f"rollouts: TRL logged {len(values)} {name} for a batch of {count}; the pinned "
            "TRL's GRPOTrainer._logs layout changed (see stages/rlvr/rollouts.py)"
        )
    return values[len(values) - count :]


def _trailing(rollouts: list[dict[str, Any]], step: int) -> int:
    """How many of the last rows belong to ``step``."""
    count = 0
    for row in reversed(rollouts):
        if row["step"] != step:
            break
        count += 1
    return count


def trainer_class() -> type:
    """A GRPOTrainer that records its training rollouts (TRL is imported on call)."""
    from accelerate.utils import gather_object
    from trl import GRPOTrainer

    class RolloutGRPOTrainer(GRPOTrainer):
        """GRPOTrainer + ``rollouts`` (rows of training/rollouts.jsonl), checkpointed."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.rollouts: list[dict[str, Any]] = []

        def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> Any:
            output = super()._generate_and_score_completions(inputs)
            if self.model.training:  # every process gathers; the main one writes the file
                rows = gather_object([(row["verifier"], row["ground_truth"]) for row in inputs])
                new = self._rows(rows)
                start = self.accelerator.process_index * len(inputs)
                mine = [row["advantage"] for row in new[start : start + len(inputs)]]
                if mine != output["advantages"].tolist():  # what the loss will see
                    raise RuntimeError(
                        "rollouts: the advantages TRL logged differ from those it returned; "
                        "the pinned TRL's GRPOTrainer changed (see stages/rlvr/rollouts.py)"
                    )
                self.rollouts.extend(new)
            return output

        def _rows(self, rows: list[tuple[str, str]]) -> list[dict[str, Any]]:
            count = len(rows)
            prompts = _last(self._logs["prompt"], count, "prompts")
            completions = _last(self._logs["completion"], count, "completions")
            rewards = _last(self._logs["rewards"][REWARD], count, "rewards")
            advantages = _last(self._logs["advantages"], count, "advantages")
            step = self.state.global_step + 1  # the optimizer step these completions train
            done = _trailing(self.rollouts, step)  # rows of this step so far (grad accumulation)
            return [
                {
                    "step": step,
                    "group": (done + index) // self.num_generations,
                    "prompt": prompt_text(prompts[index], self.processing_class),
                    "completion": completion_text(completions[index]),
                    "verifier": verifier,
                    "ground_truth": truth,
                    "reward": float(rewards[index]),
                    "advantage": float(advantages[index]),
                }
                for index, (verifier, truth) in enumerate(rows)
            ]

        def accumulator_state(self) -> dict[str, Any]:
            return {"rollouts": self.rollouts}

        def restore_accumulator_state(self, state: dict[str, Any]) -> None:
            self.rollouts = [dict(row) for row in state.get("rollouts", [])]

    return RolloutGRPOTrainer


def write_rollouts(trainer: Any, output_dir: Path) -> None:
    """The ``save_extra`` hook: write the trainer's rollouts (main process)."""
    write_jsonl(output_dir / FILE, trainer.rollouts)


def verifier_means(rollouts: list[dict[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """Verifier -> [(step, mean reward of that verifier's rollouts in the step)], by step."""
    sums: dict[str, dict[int, list[float]]] = {}
    for row in rollouts:
        sums.setdefault(row["verifier"], {}).setdefault(row["step"], []).append(row["reward"])
    return {
        verifier: [(step, sum(v) / len(v)) for step, v in sorted(steps.items())]
        for verifier, steps in sorted(sums.items())
    }
