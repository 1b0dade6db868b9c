"""One skeleton for the post-training stages (sft, dpo, rlvr).

Each of them starts from an upstream checkpoint (input ``model``) and a curate artifact (input
``data``), trains a TRL trainer for ``config['steps']`` steps (resumable, in a scratch or
checkpoint directory), saves ``model/`` with the tokenizer as tokenize made it, and writes the
log history and a summary under ``training/``. ``train_posttraining`` does all of that; a stage
brings only what is its own in a ``PostTraining``: its dataset, its trainer class and that
trainer's arguments (``make_trainer``), and the fields of its summary (``summarize``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stages.common import checkpoints
from stages.common.job import Input, JobContext
from stages.common.training import (
    common_args,
    count_parameters,
    load_tokenizer,
    model_dir,
    save_model,
    scratch_dir,
    write_training,
)


@dataclass(frozen=True)
class Base:
    """The upstream checkpoint: its HF directory, tokenizer and model (loaded in that order)."""

    source: Path
    tokenizer: Any
    model: Any


@dataclass(frozen=True)
class Prepared:
    """A trainer ready to train and what to run on it once trained (e.g. a held-out probe)."""

    trainer: Any
    after_train: Callable[[Any], None] | None = None


# (config, inputs, base checkpoint, TrainingArguments fields every stage shares) -> Prepared
MakeTrainer = Callable[[Mapping[str, Any], Mapping[str, Input], Base, dict[str, Any]], Prepared]
# (log history, trained trainer) -> the stage's own summary fields
Summarize = Callable[[list[dict[str, Any]], Any], dict[str, Any]]


@dataclass(frozen=True)
class PostTraining:
    """What one post-training stage adds to the skeleton."""

    make_trainer: MakeTrainer
    summarize: Summarize
    # Samples per optimizer step over all processes (what distributed placement splits).
    global_batch: Callable[[Mapping[str, Any]], int] = lambda config: config["batch_size"]
    # Set the saved model's eos_token_id back to the tokenizer's (SFT trains on <|im_end|>).
    restore_eos: bool = False


def load_base(inputs: Mapping[str, Input]) -> Base:
    """Tokenizer and model of the ``model`` input's checkpoint."""
    from transformers import AutoModelForCausalLM

    source = model_dir(Path(inputs["model"]))
    tokenizer = load_tokenizer(source)
    return Base(
        source,
        tokenizer,
        AutoModelForCausalLM.from_pretrained(
            str(source), local_files_only=True, use_safetensors=True
        ),
    )


def prepare(
    stage: PostTraining,
    config: Mapping[str, Any],
    inputs: Mapping[str, Input],
    scratch: Path,
    context: JobContext,
) -> Prepared:
    """The stage's trainer on the base checkpoint, with the shared arguments for ``scratch``."""
    base = load_base(inputs)
    shared = common_args({**config, "batch_size": stage.global_batch(config)}, scratch, context)
    return stage.make_trainer(config, inputs, base, shared)


def train_posttraining(
    stage: PostTraining,
    config: Mapping[str, Any],
    inputs: Mapping[str, Input],
    output_dir: Path,
    context: JobContext,
) -> dict[str, Any]:
    """Train, save model/ and training/; return the flat summary (the job's metrics)."""
    with scratch_dir(output_dir, context) as scratch:
        prepared = prepare(stage, config, inputs, scratch, context)
        trainer = prepared.trainer
        checkpoints.train(trainer, context)
        if prepared.after_train is not None:
            prepared.after_train(trainer)
        history = trainer.state.log_history
    model = trainer.model
    # The trainers may change the tokenizer (SFT sets eos to <|im_end|>): save it as tokenize
    # made it, reloaded from the input checkpoint.
    tokenizer = load_tokenizer(model_dir(Path(inputs["model"])))
    if stage.restore_eos:
        model.config.eos_token_id = tokenizer.eos_token_id
    save_model(model, tokenizer, output_dir, context)
    summary = {
        **stage.summarize(history, trainer),
        "parameters": count_parameters(model),
        "steps": config["steps"],
    }
    return write_training(output_dir, history, summary)
