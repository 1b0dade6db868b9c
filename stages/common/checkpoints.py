"""Resumable training: periodic HF Trainer checkpoints and resuming from the last complete one.

The runner (``reprolm.resume``) hands the job a persistent checkpoint directory in its
``JobContext`` (``stages.common.job``). The trainer saves ``checkpoint-<step>/`` there every
``every`` steps (keeping the last ``keep``); after the trainer has written one,
``ResumeCallback`` adds ``reprolm-resume.json`` last, so a checkpoint without it was cut off
mid-save and is skipped. A rerun of the job resumes from the newest complete checkpoint with
``trainer.train(resume_from_checkpoint=...)``: weights, optimizer, scheduler, RNG states and the
data position come back from the trainer's own files; the step goes into
``context.resumed_step``.

The trainer does not save its loss accumulators, so a resumed run would log the first loss after
the resume and ``train_loss`` over the resumed steps only; the callback saves and restores them
so that a resumed run writes the same payload, bit for bit, as an uninterrupted one.

A stage may pass a fingerprint of the data it trains on (pretrain: ``stages.pretrain.datafp``);
the marker records it, and resuming from a checkpoint whose data fingerprint differs is refused
(``ResumeDataError``): the run would continue on other tokens than it started on.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stages.common.job import MIN_KEEP, JobContext

MARKER = "reprolm-resume.json"  # written last into a checkpoint: it is complete
_CHECKPOINT = re.compile(r"checkpoint-(\d+)")


class ResumeDataError(ValueError):
    """The checkpoint to resume was trained on other data than this run is given."""


@dataclass(frozen=True)
class Checkpointing:
    """Where and how often this job saves resumable checkpoints."""

    directory: Path
    every: int  # steps between checkpoints; 0 saves none (but still resumes)
    keep: int

    def trainer_args(self) -> dict[str, Any]:
        """TrainingArguments fields: output directory and save schedule."""
        if self.every == 0:
            return {"output_dir": str(self.directory), "save_strategy": "no"}
        return {
            "output_dir": str(self.directory),
            "save_strategy": "steps",
            "save_steps": self.every,
            "save_total_limit": self.keep,
        }


def from_context(context: JobContext) -> Checkpointing | None:
    """The job's checkpointing, or None (the runner gave it no checkpoint directory)."""
    if context.checkpoint_dir is None:
        return None
    keep = max(context.checkpoint_keep, MIN_KEEP)
    return Checkpointing(Path(context.checkpoint_dir), context.checkpoint_every, keep)


def checkpoints(directory: Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of every ``checkpoint-<step>`` directory, oldest first."""
    found = []
    for path in directory.iterdir() if directory.is_dir() else ():
        match = _CHECKPOINT.fullmatch(path.name)
        if match and path.is_dir():
            found.append((int(match.group(1)), path))
    return sorted(found)


def _marker(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads((path / MARKER).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) else None


def last_complete(directory: Path) -> tuple[int, Path] | None:
    """The newest complete checkpoint; incomplete newer ones are removed with a log line."""
    for step, path in reversed(checkpoints(directory)):
        if _marker(path) is not None:
            return step, path
        print(f"resume: skipping {path}: incomplete (the job was stopped while saving it)")
        shutil.rmtree(path, ignore_errors=True)  # the trainer would save into it again
    return None


def _accumulators(trainer: Any) -> dict[str, Any]:
    """What the trainers accumulate for logging between two log steps and do not checkpoint.

    Private attributes of the pinned transformers/TRL versions (Trainer: loss since the last log
    and over the run; TRL: metric lists since the last log, tokens seen); a resumed run without
    them logs other values (tests/stages/test_resume.py checks the bitwise result).
    """
    record = {
        "tr_loss": trainer._tr_loss.item(),
        "total_loss_scalar": trainer._total_loss_scalar,
        "globalstep_last_logged": trainer._globalstep_last_logged,
    }
    if hasattr(trainer, "_total_train_tokens"):
        record["total_train_tokens"] = trainer._total_train_tokens
    if hasattr(trainer, "_metrics"):
        record["metrics"] = {
            mode: {key: [float(v) for v in values] for key, values in metrics.items()}
            for mode, metrics in trainer._metrics.items()
        }
    if hasattr(trainer, "accumulator_state"):  # a stage's own (pretrain: the router window)
        record["stage"] = trainer.accumulator_state()
    return record


def _restore_accumulators(trainer: Any, record: dict[str, Any]) -> None:
    """Put back what ``_accumulators`` saved (Trainer.train() has just zeroed it)."""
    trainer._tr_loss.fill_(record["tr_loss"])  # in place: the training loop holds this tensor
    trainer._total_loss_scalar = record["total_loss_scalar"]
    trainer._globalstep_last_logged = record["globalstep_last_logged"]
    if "total_train_tokens" in record:
        trainer._total_train_tokens = record["total_train_tokens"]
    for mode, metrics in record.get("metrics", {}).items():
        for key, values in metrics.items():
            trainer._metrics[mode][key] = list(values)
    if "stage" in record and hasattr(trainer, "restore_accumulator_state"):
        trainer.restore_accumulator_state(record["stage"])


def _make_callback(
    trainer: Any, resume_marker: dict[str, Any] | None, data: str | None = None
) -> Any:
    from transformers import TrainerCallback

    class ResumeCallback(TrainerCallback):
        """Marks saved checkpoints complete; restores the loss accumulators on resume."""

        def on_train_begin(self, args, state, control, **kwargs):
            if resume_marker is not None:
                _restore_accumulators(trainer, resume_marker["accumulators"])

        def on_step_end(self, args, state, control, **kwargs):
            # The job installs its artifact right after the last step: a checkpoint then is waste.
            if state.global_step >= state.max_steps:
                control.should_save = False

        def on_save(self, args, state, control, **kwargs):
            path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            record = {"step": state.global_step, "accumulators": _accumulators(trainer)}
            if data is not None:
                record["data"] = data
            partial = path / (MARKER + ".tmp")
            partial.write_text(json.dumps(record, sort_keys=True), encoding="utf-8")
            partial.replace(path / MARKER)  # atomic: the marker is whole or absent

    return ResumeCallback()


def _check_data(path: Path, marker: dict[str, Any] | None, data: str | None) -> None:
    """Refuse to resume a checkpoint saved on other data (``data``: this run's fingerprint)."""
    saved = (marker or {}).get("data")
    if data is not None and saved != data:
        raise ResumeDataError(
            f"resume: {path} was trained on other data (data fingerprint {saved} there, {data} "
            "now): the input shards or data order changed since the checkpoint was saved; "
            f"restore them, or delete {path.parent} to train from the start"
        )


def train(trainer: Any, context: JobContext, data: str | None = None) -> None:
    """``trainer.train()``, resumed from the job's last complete checkpoint when there is one;
    the step it resumed from goes into ``context.resumed_step``. ``data``: the fingerprint of
    the training data, saved with each checkpoint and compared before resuming."""
    from stages.common.startup import freeze_heap
    from stages.common.trainprogress import progress_callback

    trainer.add_callback(progress_callback(context))  # stderr and MLflow only, never a payload
    freeze_heap()  # the Trainer's gc.collect() at the start of training skips the start-up heap
    checkpointing = from_context(context)
    if checkpointing is None:
        trainer.train()
        return
    found = last_complete(checkpointing.directory)
    marker = _marker(found[1]) if found else None
    if found is not None:
        _check_data(found[1], marker, data)
    trainer.add_callback(_make_callback(trainer, marker, data))
    if found is None:
        trainer.train()
        return
    step, path = found
    print(f"resume: resuming from {path} (step {step})")
    context.resumed_step = step
    trainer.train(resume_from_checkpoint=str(path))
