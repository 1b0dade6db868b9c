"""Shared plumbing of the four training stages (pretrain, sft, dpo, rlvr).

Every stage trains in a scratch directory beside ``output_dir`` (so no trainer pickles reach the
payload), saves one self-contained HF checkpoint under ``model/`` and writes the trainer's log
history and a headline summary under ``training/``. Wall-clock fields are dropped from the log
history: they are the only values that differ between two runs of the same job.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from reprolm.canonical import dump_json
from stages.common import checkpoints, startup
from stages.common.distributed import distributed_args, full_parameters
from stages.common.job import JobContext

# Special tokens of the trained BPE (docs/artifacts.md, tokenize stage). A given tokenizer
# (tokenize.tokenizer: OLMo 2's, Llama 3's) brings its own: the stages read its eos and pad
# tokens, and end an assistant turn with <|im_end|> when it has one, else with its eos.
EOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<|pad|>"
END_OF_TURN_TOKEN = "<|im_end|>"


def end_of_turn(tokenizer: Any) -> str:
    """The token that ends an assistant turn: ChatML's <|im_end|> when the vocabulary has it,
    else the tokenizer's eos (OLMo 2's and Tulu's templates end a turn with eos). Tulu's template,
    as SFT adds it to a foreign base tokenizer, ends a turn with eos even when the vocabulary
    holds <|im_end|>: a template that never writes <|im_end|> ends its turns with eos."""
    template = tokenizer.chat_template
    if isinstance(template, dict):
        template = "".join(template.values())
    if END_OF_TURN_TOKEN not in tokenizer.get_vocab():
        return tokenizer.eos_token
    return (
        END_OF_TURN_TOKEN
        if template is None or END_OF_TURN_TOKEN in template
        else tokenizer.eos_token
    )


# Log-history keys that measure wall-clock time (or depend on it) and so break reproducibility.
_WALL_CLOCK_SUFFIXES = ("_runtime", "_per_second")
_WALL_CLOCK_PREFIXES = ("profiling/",)
_WALL_CLOCK_KEYS = frozenset({"step_time"})  # GRPO's per-step timer


class TrainingInputError(ValueError):
    """An input artifact or config value a training stage cannot use (the message says why)."""


@contextmanager
def scratch_dir(output_dir: Path, context: JobContext) -> Iterator[Path]:
    """A trainer output directory next to (never inside) ``output_dir``, removed afterwards.

    Under the runner with checkpointing it is the job's persistent checkpoint directory instead,
    kept for a resumed run (``stages.common.checkpoints``; the runner removes it after success).
    """
    resumable = checkpoints.from_context(context)
    if resumable is not None:
        yield resumable.directory
        return
    scratch = output_dir.parent / (output_dir.name + ".trainer")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def common_args(config: Mapping[str, Any], scratch: Path, context: JobContext) -> dict[str, Any]:
    """TrainingArguments fields every stage shares: CPU, fp32, seeded, no hub; checkpoints only
    when the runner asked for them (``stages.common.checkpoints``). Before any Trainer is
    built: no DeepSpeed import where DeepSpeed is not used (``stages.common.startup``)."""
    startup.lazy_deepspeed_check()
    resumable = checkpoints.from_context(context)
    return {
        "output_dir": str(scratch),
        "seed": config["seed"],
        "data_seed": config["seed"],
        "full_determinism": True,
        "use_cpu": True,
        # TRL configs default to bf16=True, which fails on CPU; fp32 keeps runs reproducible.
        "bf16": False,
        "fp16": False,
        "gradient_checkpointing": False,
        "report_to": "none",
        "save_strategy": "no",
        "eval_strategy": "no",
        "dataloader_num_workers": 0,
        "disable_tqdm": True,
        "max_steps": config["steps"],
        "per_device_train_batch_size": config["batch_size"],
        "gradient_accumulation_steps": 1,
        "learning_rate": config["learning_rate"],
        **schedule_args(config),
        "weight_decay": config["weight_decay"],
        "max_grad_norm": config["max_grad_norm"],
        "logging_steps": config["logging_steps"],
        "logging_first_step": False,
        "optim": "adamw_torch",
        # Multi-process placement (torchrun / DeepSpeed); {} for a single process.
        **distributed_args(config, config["batch_size"], context),
        **(resumable.trainer_args() if resumable is not None else {}),
    }


def decay_steps(config: Mapping[str, Any]) -> int:
    """Steps of the WSD decay phase: ``decay_fraction`` x ``steps``, rounded, at least 1."""
    return max(1, round(config["decay_fraction"] * config["steps"]))


def schedule_name(config: Mapping[str, Any]) -> str:
    """The learning-rate schedule: ``schedule`` when the block sets it (pretrain's OLMo 2-style
    name, e.g. ``schedule: wsd``), else ``lr_scheduler``."""
    return str(config.get("schedule") or config["lr_scheduler"])


def schedule_args(config: Mapping[str, Any]) -> dict[str, Any]:
    """TrainingArguments fields of the learning-rate schedule.

    ``wsd`` (warmup-stable-decay, OLMo 2 / MiniCPM style): linear warmup over ``warmup_steps``,
    the peak rate until the last ``decay_fraction`` of the steps, then linear decay to
    ``min_lr_ratio`` x peak (0 when unset): transformers' ``warmup_stable_decay`` schedule.
    """
    name = schedule_name(config)
    if name != "wsd":
        return {"lr_scheduler_type": name, "warmup_steps": config["warmup_steps"]}
    if "decay_fraction" not in config:
        raise TrainingInputError("lr_scheduler: wsd needs decay_fraction (e.g. 0.1)")
    decay = decay_steps(config)
    if config["warmup_steps"] + decay > config["steps"]:
        raise TrainingInputError(
            f"warmup_steps={config['warmup_steps']} + wsd decay steps={decay} (decay_fraction="
            f"{config['decay_fraction']} x steps={config['steps']}) exceed steps; lower them"
        )
    return {
        "lr_scheduler_type": "warmup_stable_decay",
        "warmup_steps": config["warmup_steps"],
        "lr_scheduler_kwargs": {
            "num_decay_steps": decay,
            "decay_type": "linear",
            "warmup_type": "linear",
            "min_lr_ratio": float(config.get("min_lr_ratio", 0.0)),
        },
    }


def model_dir(artifact: Path, input_name: str = "model") -> Path:
    """``<artifact>/model`` of an upstream checkpoint artifact, or a clear error."""
    path = Path(artifact) / "model"
    if not (path / "config.json").is_file():
        raise TrainingInputError(
            f"input {input_name!r}: {path}/config.json not found; pass the artifact directory of "
            "a pretrain/sft/dpo/rlvr job (it holds model/ with an HF checkpoint)"
        )
    return path


def load_tokenizer(path: Path) -> Any:
    """The HF tokenizer saved at ``path``; checks the special tokens the recipe relies on."""
    from transformers import AutoTokenizer

    if not (Path(path) / "tokenizer.json").is_file():
        raise TrainingInputError(f"{path}/tokenizer.json not found; run the tokenize stage first")
    # local_files_only is explicit: the saved tokenizer_config.json records it, and left unset it
    # follows HF_HUB_OFFLINE of the environment (two machines would save different bytes).
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    if tokenizer.eos_token is None:
        raise TrainingInputError(f"{path}: the tokenizer has no eos token (tokenizer_config.json)")
    if tokenizer.pad_token is None:  # Llama 3 has none: pad with eos (masked out of the loss)
        tokenizer.pad_token = (
            PAD_TOKEN if PAD_TOKEN in tokenizer.get_vocab() else tokenizer.eos_token
        )
    return tokenizer


def load_jsonl(path: Path, required: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows of a JSONL file; the error names the file, line and missing key."""
    if not path.is_file():
        raise TrainingInputError(f"{path} not found; pass the artifact directory of a curate job")
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise TrainingInputError(f"{path}:{number}: not valid JSON: {error}") from None
            absent = [key for key in required if key not in row]
            if absent:
                raise TrainingInputError(f"{path}:{number}: row lacks keys {absent}")
            rows.append(row)
    if not rows:
        raise TrainingInputError(f"{path}: no rows; the stage needs at least one example")
    return rows


def save_model(model: Any, tokenizer: Any, output_dir: Path, context: JobContext) -> Path:
    """Save a self-contained checkpoint (safetensors, generation config, tokenizer) to model/."""
    from transformers import GenerationConfig

    target = output_dir / "model"
    ends = dict.fromkeys((tokenizer.eos_token, end_of_turn(tokenizer)))  # ordered, no repeat
    eos_ids = [tokenizer.convert_tokens_to_ids(t) for t in ends]
    pad_id = tokenizer.pad_token_id
    # Generation stops at end of document or end of assistant turn; greedy unless asked.
    model.generation_config = GenerationConfig(
        eos_token_id=eos_ids, pad_token_id=pad_id, bos_token_id=None, do_sample=False
    )
    model.config.use_cache = True
    with full_parameters(model):  # ZeRO-3: every rank gathers, rank 0 writes
        if context.is_main:
            model.save_pretrained(str(target), safe_serialization=True)
            tokenizer.save_pretrained(str(target))
    return target


def clean_log_history(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The log history without wall-clock fields; non-finite numbers become null."""
    cleaned = []
    for entry in history:
        row = {}
        for key, value in entry.items():
            if (
                key in _WALL_CLOCK_KEYS
                or key.endswith(_WALL_CLOCK_SUFFIXES)
                or key.startswith(_WALL_CLOCK_PREFIXES)
            ):
                continue
            if isinstance(value, float) and not math.isfinite(value):
                value = None
            row[key] = value
        cleaned.append(row)
    return cleaned


def series(history: list[dict[str, Any]], key: str) -> list[float]:
    """Values of ``key`` over the logged training steps, in order."""
    return [float(e[key]) for e in history if isinstance(e.get(key), (int, float))]


def window_mean(values: list[float], first: bool, fraction: float = 0.25) -> float | None:
    """Mean over the first (or last) ``fraction`` of the values (at least one), None if empty."""
    if not values:
        return None
    count = max(1, int(len(values) * fraction))
    part = values[:count] if first else values[-count:]
    return sum(part) / len(part)


def write_training(
    output_dir: Path, history: list[dict[str, Any]], summary: Mapping[str, Any]
) -> dict[str, Any]:
    """Write training/log_history.json and training/summary.json; return the flat summary."""
    target = output_dir / "training"
    target.mkdir(parents=True, exist_ok=True)
    (target / "log_history.json").write_text(dump_json(clean_log_history(history)), "utf-8")
    flat = {k: v for k, v in summary.items() if v is not None}
    (target / "summary.json").write_text(dump_json(flat), "utf-8")
    return flat


def count_parameters(model: Any) -> int:
    """Trainable parameters (tied embeddings counted once)."""
    # ZeRO-3 partitions parameters (numel 0 here); ds_numel is the full size.
    return sum(getattr(p, "ds_numel", p.numel()) for p in model.parameters())
