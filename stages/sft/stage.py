"""SFT of the pretrained checkpoint on curate's ``data/sft.jsonl`` (assistant-only loss)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stages.common import checkpoints
from stages.common.training import (
    END_OF_TURN_TOKEN,
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


def load_messages(data_dir: Path) -> list[dict[str, Any]]:
    """The ``messages`` of every row of data/sft.jsonl, checked to hold an assistant turn."""
    path = data_dir / "data" / "sft.jsonl"
    rows = load_jsonl(path, ("messages",))
    for number, row in enumerate(rows, start=1):
        roles = [m.get("role") for m in row["messages"]]
        if "assistant" not in roles:
            raise TrainingInputError(f"{path}:{number}: no assistant message, nothing to learn")
    return [{"messages": row["messages"]} for row in rows]


def build_trainer(config: dict, inputs: dict[str, Path], scratch: Path) -> Any:
    """An SFTTrainer ready to train (split out so tests can inspect its collated batches)."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    source = model_dir(Path(inputs["model"]))
    tokenizer = load_tokenizer(source)
    model = AutoModelForCausalLM.from_pretrained(str(source))
    dataset = Dataset.from_list(load_messages(Path(inputs["data"])))
    args = SFTConfig(
        **common_args(config, scratch),
        max_length=config["max_length"],
        packing=False,
        # Loss on assistant tokens only: the chat template marks them with {% generation %}.
        assistant_only_loss=True,
        # The end of an assistant turn; training on it teaches the model to stop.
        eos_token=END_OF_TURN_TOKEN,
        dataset_num_proc=None,
        shuffle_dataset=False,
    )
    return SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)


def run(config: dict, inputs: dict[str, Path], output_dir: Path) -> dict:
    """Fine-tune for ``config['steps']`` steps; write model/ and training/."""
    with scratch_dir(output_dir) as scratch:
        trainer = build_trainer(config, inputs, scratch)
        checkpoints.train(trainer)
        history = trainer.state.log_history
    model = trainer.model
    # SFTTrainer set the tokenizer's eos to <|im_end|>; save the tokenizer as tokenize made it.
    tokenizer = load_tokenizer(model_dir(Path(inputs["model"])))
    model.config.eos_token_id = tokenizer.eos_token_id
    save_model(model, tokenizer, output_dir)
    losses = series(history, "loss")
    summary = {
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "first_quarter_loss": window_mean(losses, first=True),
        "last_quarter_loss": window_mean(losses, first=False),
        "examples": len(trainer.train_dataset),
        "parameters": count_parameters(model),
        "steps": config["steps"],
    }
    return write_training(output_dir, history, summary)
