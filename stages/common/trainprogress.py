"""The training stages' view of a run in progress: a ``Progress`` over the trainer's steps and,
when a tracking server is configured, the live MLflow curve (``reprolm.tracking.live``).

One ``TrainerCallback`` (``progress_callback``) that every training stage gets through
``stages.common.checkpoints.train``. It reads the trainer's state and logs and writes to stderr
and the tracking server only: the payload (model/, training/) is the same with it or without.
"""

from __future__ import annotations

from typing import Any

from stages.common.job import JobContext
from stages.common.progress import Progress

# Shown in the progress line, the first that a log step has (GRPO logs reward, not loss alone).
SHOWN = ("loss", "reward")


def _numbers(logs: dict[str, Any]) -> dict[str, float]:
    from stages.common.training import clean_log_history

    row = clean_log_history([logs])[0]  # the wall-clock fields log_history.json drops
    return {
        key: float(value)
        for key, value in row.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def _start_live(context: JobContext) -> Any:
    try:
        from reprolm.tracking import live
    except ImportError:  # tracking is the platform's; a stage never depends on it
        return None
    return live.start(context.stage, context.fingerprint)


def progress_callback(context: JobContext) -> Any:
    """A ``TrainerCallback``: progress line/bar per step, live metrics per logging step."""
    from transformers import TrainerCallback

    class ProgressCallback(TrainerCallback):
        progress: Progress | None = None
        live: Any = None

        def on_train_begin(self, args, state, control, **kwargs):
            if not state.is_world_process_zero:
                return
            self.progress = Progress(
                context.stage or "train", state.max_steps, "step", initial=state.global_step
            )
            self.live = _start_live(context)

        def on_step_end(self, args, state, control, **kwargs):
            # A step that logs moves the progress in on_log (next), so its line has its loss.
            if self.progress is not None and not control.should_log:
                self.progress.set(state.global_step)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if self.progress is None or not logs:
                return
            numbers = _numbers(logs)
            shown = next((key for key in SHOWN if key in numbers), None)
            self.progress.set(state.global_step, **({shown: numbers[shown]} if shown else {}))
            if self.live is not None:
                self.live.log(state.global_step, numbers)

        def on_train_end(self, args, state, control, **kwargs):
            if self.progress is not None:
                self.progress.close()
            if self.live is not None:
                self.live.close()  # the last batch; log_job completes the run

    return ProgressCallback()
