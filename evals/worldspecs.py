"""The tiny world's eval sets as registered task specs (regime ``tiny``); the family that runs
them is :mod:`evals.world`. Kept apart so that reading the registry (the curate job does) does not
import the verifiers the family scores with: the code digest follows imports.
"""

from __future__ import annotations

from evals.families import WORLD_REGIME
from evals.spec import TaskSpec

PROMPT_FORMAT = "tiny_world_qa"
TASK_TYPES = {"gen": "generate", "rc": "multiple_choice"}  # spec format -> index.json type
MC_METRICS = {"acc": "raw", "acc_norm": "per_char"}  # lm-eval's names -> normalization
GEN_METRIC = "exact_match"
EVERY_ROW = 1 << 62  # the world's sets are evaluated whole (or their first `limit` rows)


def _spec(task: str, fmt: str, verifier: str | None = None) -> TaskSpec:
    return TaskSpec(
        task_id=f"{task}:{fmt}::{WORLD_REGIME}",
        dataset=f"reprolm/world:eval/{task}.jsonl",
        split="test",
        fewshot=None,  # num_fewshot shots come from the same set (lm-eval's sampler)
        prompt_format=PROMPT_FORMAT,
        normalizations=(verifier,) if verifier else tuple(MC_METRICS.values()),
        primary_metric=GEN_METRIC if fmt == "gen" else "acc",
        version=1,
        sample_threshold=EVERY_ROW,
    )


SPECS: tuple[TaskSpec, ...] = (
    _spec("arith_gen", "gen", "numeric_answer"),
    _spec("arith_mc", "rc"),
    _spec("facts_mc", "rc"),
    _spec("tom_mc", "rc"),
)
TASK_IDS: dict[str, str] = {spec.task: spec.task_id for spec in SPECS}  # index name -> id


def task_type(spec: TaskSpec) -> str:
    """``generate`` or ``multiple_choice`` (the world's index.json ``type``)."""
    return TASK_TYPES[spec.format]


def verifier_of(spec: TaskSpec) -> str | None:
    """The verifier registry name a generative world task is scored with."""
    return spec.normalizations[0] if spec.format == "gen" else None


def data_path(spec: TaskSpec) -> str:
    """The task's data file, relative to the world artifact (``eval/<task>.jsonl``)."""
    return spec.dataset.partition(":")[2]
