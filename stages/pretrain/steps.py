"""Intermediate checkpoints kept in the pretrain artifact (``save_steps`` / ``save_every``).

At each listed step a callback saves the model as the job saves its last one (``save_model``:
safetensors, generation config, tokenizer) into the trainer's directory, under
``reprolm-steps/step-<N>/model/``: with the runner's resumable checkpointing that directory
outlives a killed job, so a resumed run still has the steps saved before it was killed. After
training they move into the artifact as ``steps/step-<N>/``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from evals.steps import step_dir
from stages.common.job import JobContext
from stages.common.training import TrainingInputError, save_model

PENDING = "reprolm-steps"


def step_saver(model: Any, tokenizer: Any, scratch: Path, steps: list[int], context: JobContext):
    """A TrainerCallback saving the weights after each step of ``steps``."""
    from transformers import TrainerCallback

    wanted = set(steps)

    class StepSaver(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step in wanted:
                target = scratch / PENDING / step_dir(state.global_step)
                shutil.rmtree(target, ignore_errors=True)
                use_cache = model.config.use_cache
                save_model(model, tokenizer, target, context)
                model.config.use_cache = use_cache

    return StepSaver()


def install_steps(scratch: Path, output_dir: Path, steps: list[int], context: JobContext) -> None:
    """Move the saved steps into ``output_dir/steps/``; every planned step must be there."""
    if not context.is_main:
        return
    for step in steps:
        source = scratch / PENDING / step_dir(step)
        if not (source / "model" / "config.json").is_file():
            raise TrainingInputError(
                f"pretrain: step {step} (save_steps / save_every) was not saved in {source}; "
                "the run resumed from a checkpoint made after it: delete the job's checkpoint "
                "directory to train from the start"
            )
        target = output_dir / step_dir(step)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(source), str(target))
