"""SFT of the pretrained checkpoint on curate's ``data/sft.jsonl`` (assistant-only loss)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reprolm.canonical import dump_json
from stages.common.job import Input, JobContext
from stages.common.posttraining import Base, PostTraining, Prepared, prepare, train_posttraining
from stages.common.training import (
    TrainingInputError,
    end_of_turn,
    load_jsonl,
    series,
    window_mean,
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


def make_trainer(
    config: Mapping[str, Any], inputs: Mapping[str, Input], base: Base, shared: dict[str, Any]
) -> Prepared:
    """An SFTTrainer on data/sft.jsonl, loss on the assistant turns only."""
    from datasets import Dataset
    from trl import SFTConfig

    from stages.sft.sequences import RecordingSFTTrainer

    dataset = Dataset.from_list(load_messages(Path(inputs["data"])))
    packing = bool(config.get("packing"))
    args = SFTConfig(
        **shared,
        max_length=config["max_length"],
        # Packed rows are padding-free (one row, position_ids restart per conversation): the
        # attention mask transformers builds from them keeps each conversation to itself.
        packing=packing,
        packing_strategy=config.get("packing_strategy") or "bfd",
        # Loss on assistant tokens only: the chat template marks them with {% generation %}.
        assistant_only_loss=True,
        # The end of an assistant turn; training on it teaches the model to stop.
        eos_token=end_of_turn(base.tokenizer),
        dataset_num_proc=None,
        shuffle_dataset=False,
    )
    trainer = RecordingSFTTrainer(
        model=base.model, args=args, train_dataset=dataset, processing_class=base.tokenizer
    )
    return Prepared(trainer)


def summarize(history: list[dict[str, Any]], trainer: Any) -> dict[str, Any]:
    losses = series(history, "loss")
    return {
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "first_quarter_loss": window_mean(losses, first=True),
        "last_quarter_loss": window_mean(losses, first=False),
        "examples": trainer.sequences["examples"],
        "sequences": trainer.sequences["sequences"],
        "examples_over_max_length": trainer.sequences["examples_over_max_length"],
        "tokens_dropped": trainer.sequences["tokens_dropped"],
    }


def save_sequences(trainer: Any, output_dir: Path) -> None:
    """training/sequences.json: truncation and packing of the conversations (sft.sequences)."""
    (output_dir / "training").mkdir(parents=True, exist_ok=True)
    (output_dir / "training" / "sequences.json").write_text(dump_json(trainer.sequences), "utf-8")


SFT = PostTraining(
    make_trainer, summarize, restore_eos=True, save_extra=save_sequences, adapt_tokenizer=True
)


def build_trainer(
    config: dict, inputs: Mapping[str, Input], scratch: Path, context: JobContext | None = None
) -> Any:
    """An SFTTrainer ready to train (split out so tests can inspect its collated batches)."""
    return prepare(SFT, config, inputs, scratch, context or JobContext()).trainer


def run(config: dict, inputs: dict[str, Input], output_dir: Path, context: JobContext) -> dict:
    """Fine-tune for ``config['steps']`` steps; write model/ and training/."""
    return train_posttraining(SFT, config, inputs, output_dir, context)
