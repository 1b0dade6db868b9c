"""Task families: how each kind of spec is run, scored from saved outputs and recomputed.

A spec's *kind* is ``world`` for the tiny world's own tasks (regime ``tiny``),
``multiple_choice`` for rc/mc formats, else its task name (``gsm8k``, ``ifeval``, ...). Each
kind is served by one module that defines ``FAMILY``, a :class:`Family`; the table below names
the module, imported only when that kind is used (so ``reprolm eval recompute`` of an IFEval
result never imports lm-eval). Adding a benchmark = a module with ``FAMILY`` + its specs in the
registry + one line here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evals.critics import Critic
from evals.spec import TaskSpec

WORLD_REGIME = "tiny"  # the tiny world's own eval sets (evals.world)

# result kind -> module defining FAMILY
MODULES: dict[str, str] = {
    "world": "evals.world",
    "multiple_choice": "evals.multiple_choice",
    "gsm8k": "evals.gsm8k",
    "ifeval": "evals.ifeval",
    "simpletom": "evals.simpletom",
    "ds_critique": "evals.digital_socrates",
    "complement_coercion": "evals.coercion",
    "worldvaluesbench": "evals.worldvaluesbench",
    "delta_rot": "evals.delta_rot",
    "proc2pddl": "evals.proc2pddl",
    "minerva_math": "evals.minerva_math_family",
    "bbh": "evals.bbh",
    "drop": "evals.drop",
    "alpaca_eval_v2": "evals.alpaca_eval",
    "xstest": "evals.safety",
    "mmlu": "evals.mmlu_tulu",
    "popqa": "evals.popqa",
    "truthfulqa": "evals.truthfulqa",
    "codex_humaneval": "evals.humaneval",
    "codex_humanevalplus": "evals.humanevalplus",
}


@dataclass(frozen=True)
class RunOptions:
    """How a spec runs on a model; recorded in the result's ``harness`` block."""

    limit: int | None = None
    batch_size: int = 1
    seed: int = 1234
    backend: str = "hf"
    device: str = "cpu"
    max_gen_toks: int | None = None  # None: the family's default
    lm: Any = None  # an already loaded lm-eval model (else loaded from the model dir)
    # Critic models by name (evals.critics), from the recipe's evaluate.critics or the CLI.
    critics: Mapping[str, Critic] = field(default_factory=dict)
    num_fewshot: int = 0  # world tasks only: shots lm-eval draws from the same set
    chat: bool | None = None  # world tasks only: lm-eval applies the chat template


@dataclass(frozen=True)
class Family:
    """What one kind of task implements.

    ``metrics(rows, spec)``: every metric from the saved prediction rows and the resolved spec
    (used by ``recompute``; must be deterministic and model-free).
    ``evaluate(spec, model_dir, data, out_dir, options)``: run on a model, write the result
    directory, return the loaded result (None: the kind cannot run on a model here).
    ``score(spec, predictions, data, out_dir)``: score outputs produced elsewhere, write the
    result directory when ``out_dir`` is given, return the result (None: not supported).
    ``texts(data)``: per row of a data file, the instance text training data is decontaminated
    against (what a model is asked); None: contamination is not measured for this kind.
    ``resolve(spec, data)``: the resolved spec for a dataset that is not one JSONL file read
    whole (a directory, ...), as ``evaluate`` resolves it; None: ``spec.resolve`` over the
    JSONL rows (``reprolm eval spec --data``).
    ``evaluate_batch(jobs, model_dir, options)``: several ``(spec, data, out_dir)`` of this kind
    sharing ``options`` in one model call (results in job order); None: one ``evaluate`` each.
    """

    kind: str
    metrics: Callable[[list[dict], dict[str, Any]], dict[str, float]]
    evaluate: Callable[[TaskSpec, Path, Path, Path, RunOptions], dict[str, Any]] | None = None
    score: Callable[[TaskSpec, Path, Path | None, Path | None], dict[str, Any]] | None = None
    texts: Callable[[Path], list[str]] | None = None
    resolve: Callable[[TaskSpec, Path], dict[str, Any]] | None = None
    evaluate_batch: (
        Callable[[list[tuple[TaskSpec, Path, Path]], Path, RunOptions], list[dict]] | None
    ) = None


def field_texts(key: str) -> Callable[[Path], list[str]]:
    """A family's ``texts``: the ``key`` field of each row of a JSONL data file."""

    def texts(data: Path) -> list[str]:
        from evals import sources

        return [row[key] for row in sources.read_jsonl(data)]

    return texts


def kind_of(spec: TaskSpec) -> str:
    """The result kind of a spec."""
    if spec.regime == WORLD_REGIME:
        return "world"
    return "multiple_choice" if spec.format in ("rc", "mc") else spec.task


def family(kind: str) -> Family:
    """The family serving ``kind`` (an unknown kind lists the known ones)."""
    try:
        module = MODULES[kind]
    except KeyError:
        known = ", ".join(sorted(MODULES))
        raise ValueError(f"unknown result kind {kind!r}; known: {known}") from None
    found = getattr(importlib.import_module(module), "FAMILY", None)
    if not isinstance(found, Family) or found.kind != kind:
        raise RuntimeError(f"{module} defines no FAMILY for kind {kind!r}")
    return found


def family_of(spec: TaskSpec) -> Family:
    return family(kind_of(spec))
