"""Intermediate pretraining checkpoints: names, labels and where their weights lie.

``evaluate.checkpoints`` may name a pretraining step, ``pretrain@step100`` (OLMo evaluates every N
steps): the pretrain job saves those steps' weights under ``steps/step-<N>/model/`` of its
artifact (``pretrain.save_steps`` / ``save_every``) and the evaluate job of such a checkpoint,
labelled ``pretrain_step100`` (labels are path parts), reads them. Pure Python.
"""

from __future__ import annotations

import re
from pathlib import Path

STEP_NAME = re.compile(r"(?P<stage>pretrain)@step(?P<step>[1-9][0-9]*)")
STEP_LABEL = re.compile(r"(?P<stage>pretrain)_step(?P<step>[1-9][0-9]*)")
STEPS_DIR = "steps"


def parse(name: str) -> tuple[str, int | None]:
    """``(stage, step)`` of a checkpoint name or label (``pretrain@step100`` or
    ``pretrain_step100`` -> ``("pretrain", 100)``; ``sft`` -> ``("sft", None)``)."""
    match = STEP_NAME.fullmatch(name) or STEP_LABEL.fullmatch(name)
    return (match["stage"], int(match["step"])) if match else (name, None)


def label(name: str) -> str:
    """The job label of a checkpoint: ``pretrain@step100`` -> ``pretrain_step100``."""
    stage, step = parse(name)
    return name if step is None else f"{stage}_step{step}"


def step_dir(step: int) -> str:
    """Where step ``step``'s checkpoint lies in a pretrain artifact (it holds ``model/``)."""
    return f"{STEPS_DIR}/step-{step}"


def weights_root(artifact: Path, name: str) -> Path:
    """The directory holding ``model/`` of checkpoint ``name`` in its producing artifact."""
    _, step = parse(name)
    return Path(artifact) if step is None else Path(artifact) / step_dir(step)


def saved_steps(config: dict) -> list[int]:
    """The steps a pretrain config saves besides the last: ``save_steps`` and every
    ``save_every`` steps, below ``steps`` (the last step is ``model/`` itself)."""
    total = int(config["steps"])
    wanted = set(config.get("save_steps") or [])
    every = config.get("save_every") or 0
    if every:
        wanted |= set(range(every, total, every))
    return sorted(step for step in wanted if 0 < step < total)
