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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from reprolm.canonical import dump_json
from stages.common import checkpoints, tokenizer_changes
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
    # What adapting a foreign base tokenizer added ({} when nothing: the project's own).
    tokenizer_changes: dict[str, Any] = field(default_factory=dict)


# (config, inputs, base checkpoint, TrainingArguments fields every stage shares) -> Prepared
MakeTrainer = Callable[[Mapping[str, Any], Mapping[str, Input], Base, dict[str, Any]], Prepared]
# (log history, trained trainer) -> the stage's own summary fields
Summarize = Callable[[list[dict[str, Any]], Any], dict[str, Any]]
# (trained trainer, output_dir) -> None: the stage's own files under training/ (main process)
SaveExtra = Callable[[Any, Path], None]


@dataclass(frozen=True)
class PostTraining:
    """What one post-training stage adds to the skeleton."""

    make_trainer: MakeTrainer
    summarize: Summarize
    # Samples per optimizer step over all processes (what distributed placement splits).
    global_batch: Callable[[Mapping[str, Any]], int] = lambda config: config["batch_size"]
    # Set the saved model's eos_token_id back to the tokenizer's (SFT trains on <|im_end|>).
    restore_eos: bool = False
    # More payload files (DPO: training/reference_logps.jsonl).
    save_extra: SaveExtra | None = None
    # Add Tulu's pad token / chat template to a foreign base tokenizer (SFT only:
    # stages.common.tokenizer_changes); later stages load the tokenizer SFT saved.
    adapt_tokenizer: bool = False


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
    # Order matters under ZeRO-3: load and resize the whole model first; TrainingArguments with
    # a DeepSpeed config (built in make_trainer) would make from_pretrained partition at load,
    # and the trainer partitions the model it is given when training starts.
    base = load_base(inputs)
    changes: dict[str, Any] = {}
    if stage.adapt_tokenizer:
        changes = tokenizer_changes.adapt_tokenizer(base.tokenizer)
        tokenizer_changes.resize_embeddings(base.model, base.tokenizer, changes)
    shared = common_args({**config, "batch_size": stage.global_batch(config)}, scratch, context)
    return replace(stage.make_trainer(config, inputs, base, shared), tokenizer_changes=changes)


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
    # made it, reloaded from the input checkpoint (plus what adapting a foreign one added).
    tokenizer = load_tokenizer(model_dir(Path(inputs["model"])))
    changes = prepared.tokenizer_changes
    if changes and tokenizer_changes.adapt_tokenizer(tokenizer) != {
        k: v for k, v in changes.items() if k != "embeddings"
    }:
        raise RuntimeError("adapting the reloaded tokenizer gave other changes than in training")
    if stage.restore_eos:
        model.config.eos_token_id = tokenizer.eos_token_id
    save_model(model, tokenizer, output_dir, context)
    if stage.save_extra is not None and context.is_main:
        stage.save_extra(trainer, output_dir)
    if changes and context.is_main:
        (output_dir / "training").mkdir(parents=True, exist_ok=True)
        (output_dir / "training" / "tokenizer_changes.json").write_text(dump_json(changes), "utf-8")
    summary = {
        **stage.summarize(history, trainer),
        **tokenizer_changes.summary_fields(changes),
        "parameters": count_parameters(model),
        "steps": config["steps"],
    }
    return write_training(output_dir, history, summary)
