"""Mid-training (OLMo 2's Dolmino phase): the pretrain checkpoint annealed on a mix of the
tokenize artifact's sources, from a peak learning rate decayed linearly to 0."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from reprolm.canonical import dump_json
from reprolm.hashing import hash_bytes
from stages.common import checkpoints
from stages.common.job import Input, JobContext
from stages.common.training import (
    TrainingInputError,
    common_args,
    count_parameters,
    load_tokenizer,
    model_dir,
    save_model,
    scratch_dir,
    series,
    window_mean,
    write_training,
)
from stages.midtrain.mix import select
from stages.pretrain.data import open_shards, read_index
from stages.pretrain.datafp import data_fingerprint
from stages.pretrain.objective import objective, pretrain_trainer_class

MIX_DIR = "mix"  # payload: mix.json (per-source windows) and samples.npy (the run's windows)


def mix_dataset(shards: list[np.ndarray], samples: np.ndarray, seq_len: int) -> Any:
    """Sample ``i`` of the run is the window at ``samples[i]`` = (source, part, offset)."""
    import torch

    class Windows(torch.utils.data.IterableDataset):
        def __iter__(self):
            for _, part, offset in samples:
                window = shards[int(part)][int(offset) : int(offset) + seq_len]
                ids = torch.from_numpy(window.astype(np.int64))
                yield {"input_ids": ids, "labels": ids.clone()}

    return Windows()


def load_pretrained(model_input: Input, tokenizer: Any) -> Any:
    """The ``model`` input's checkpoint; its tokenizer must be the tokenize artifact's."""
    from transformers import AutoModelForCausalLM

    source = model_dir(Path(model_input))
    if load_tokenizer(source).get_vocab() != tokenizer.get_vocab():
        raise TrainingInputError(
            f"midtrain: the tokenizer of {source} is not the tokenize input's; pass the pretrain "
            "checkpoint trained on this tokenize artifact"
        )
    model = AutoModelForCausalLM.from_pretrained(
        str(source), local_files_only=True, use_safetensors=True
    )
    if model.config.vocab_size != len(tokenizer):
        raise TrainingInputError(
            f"midtrain: {source} has vocab_size {model.config.vocab_size}, the tokenizer "
            f"{len(tokenizer)}; pass the pretrain checkpoint of this tokenize artifact"
        )
    return model


def run(config: dict, inputs: dict[str, Input], output_dir: Path, context: JobContext) -> dict:
    """Anneal for ``config['steps']`` steps; write model/, training/ and mix/; return metrics."""
    from transformers import TrainingArguments, default_data_collator

    for name in ("model", "tokenize", "curate"):
        if name not in inputs:
            raise TrainingInputError(
                f"midtrain: needs input {name!r} (the pretrain, tokenize and curate artifacts)"
            )
    tokenize_dir = inputs["tokenize"].path
    tokenizer = load_tokenizer(tokenize_dir / "tokenizer")
    model = load_pretrained(inputs["model"], tokenizer)
    seq_len = config.get("seq_len")
    if seq_len is None:
        raise TrainingInputError(
            "midtrain: config has no seq_len (the plan sets it from pretrain.seq_len); give the "
            "pretrain job's seq_len"
        )
    if seq_len > model.config.max_position_embeddings:
        raise TrainingInputError(
            f"midtrain.seq_len={seq_len} exceeds the model's max_position_embeddings="
            f"{model.config.max_position_embeddings}"
        )
    if sum(config["mix"].values()) <= 0:
        raise TrainingInputError("midtrain.mix: the ratios sum to 0; give one a ratio above 0")
    index = read_index(tokenize_dir)
    shards = open_shards(tokenize_dir, len(tokenizer))
    total = config["steps"] * config["batch_size"]  # the global batch, over all processes
    samples, record = select(
        shards, index, inputs["curate"].path, config["mix"], seq_len, total, config["seed"]
    )
    # A resumed run must read the same windows: the data and the drawn samples.
    data = hash_bytes(
        (data_fingerprint(inputs["tokenize"], index) + hash_bytes(samples.tobytes())).encode()
    )
    # OLMo 2 anneals linearly to 0: transformers' linear schedule (after warmup_steps).
    schedule = {**config, "lr_scheduler": "linear"}
    with scratch_dir(output_dir, context) as scratch:
        args = TrainingArguments(
            **common_args(schedule, scratch, context),
            adam_beta1=config["adam_beta1"],
            adam_beta2=config["adam_beta2"],
            adam_epsilon=config["adam_epsilon"],
        )
        trainer = pretrain_trainer_class()(
            model=model,
            args=args,
            train_dataset=mix_dataset(shards, samples, seq_len),
            data_collator=default_data_collator,
        )
        trainer.objective = objective(config)
        checkpoints.train(trainer, context, data)
        history = trainer.state.log_history
        final_lr = float(trainer.lr_scheduler.get_last_lr()[0])

    save_model(model, tokenizer, output_dir, context)
    if context.is_main:
        (output_dir / MIX_DIR).mkdir(parents=True, exist_ok=True)
        (output_dir / MIX_DIR / "mix.json").write_text(dump_json(record), "utf-8")
        np.save(output_dir / MIX_DIR / "samples.npy", samples, allow_pickle=False)
    losses = series(history, "loss")
    summary = {
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "first_quarter_loss": window_mean(losses, first=True),
        "last_quarter_loss": window_mean(losses, first=False),
        "tokens_seen": total * seq_len,
        "final_learning_rate": final_lr,
        "parameters": count_parameters(model),
        "steps": config["steps"],
        **{f"windows.{name}": entry["windows"] for name, entry in record["sources"].items()},
    }
    return write_training(output_dir, history, summary)
