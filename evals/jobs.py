"""Run a list of evaluations on one model: the one loop every result goes through.

An :class:`EvalJob` is one spec on one data file, written to one result directory, with its run
options. :func:`run_jobs` runs them in order through their families; consecutive jobs of a family
that evaluates batches (the tiny world's tasks) and share their options go to the model in one
call, as lm-eval batches them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evals.families import RunOptions, family_of, kind_of
from evals.spec import TaskSpec


@dataclass(frozen=True)
class EvalJob:
    """One evaluation: ``name`` is how tables list it (a world task's short name, else the id).
    ``variant``: the spec ran in place of the requested one (``{"requested", "ran", "reason"}``,
    :func:`evals.basevariants.choose`), None when the requested spec ran."""

    name: str
    spec: TaskSpec
    data: Path
    out_dir: Path
    options: RunOptions
    variant: dict[str, str] | None = None

    @property
    def requested(self) -> str:
        """The spec id the configuration asked for."""
        return self.variant["requested"] if self.variant else self.spec.task_id


def batches(jobs: Sequence[EvalJob]) -> Iterator[list[EvalJob]]:
    """Consecutive jobs that run in one model call (same batching family, same options)."""
    batch: list[EvalJob] = []
    for job in jobs:
        if batch and not _joins(batch[-1], job):
            yield batch
            batch = []
        batch.append(job)
    if batch:
        yield batch


def _joins(last: EvalJob, job: EvalJob) -> bool:
    same_kind = kind_of(last.spec) == kind_of(job.spec)
    return (
        same_kind and family_of(job.spec).evaluate_batch is not None and last.options == job.options
    )


def run_jobs(
    jobs: Sequence[EvalJob],
    model_dir: Path,
    on_done: Callable[[Sequence[EvalJob]], None] | None = None,
) -> list[tuple[EvalJob, dict[str, Any]]]:
    """Run every job (in order); return ``(job, result)`` pairs. ``on_done`` hears of each
    finished batch of jobs (the stage's progress)."""
    done = []
    for batch in batches(jobs):
        family = family_of(batch[0].spec)
        if family.evaluate is None:
            raise ValueError(f"{batch[0].spec.task_id}: this kind cannot run on a model here")
        if family.evaluate_batch is not None:
            triples = [(j.spec, j.data, j.out_dir) for j in batch]
            found = family.evaluate_batch(triples, model_dir, batch[0].options)
        else:
            found = [
                family.evaluate(j.spec, model_dir, j.data, j.out_dir, j.options) for j in batch
            ]
        done += list(zip(batch, found, strict=True))
        if on_done is not None:
            on_done(batch)
    return done
