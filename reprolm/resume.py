"""The runner's side of resumable training: one persistent checkpoint directory per job.

A training job saves resumable checkpoints into ``<artifacts>/<stage>/.<label>-<fp>.checkpoints``
(beside its artifact, never inside it). That directory survives a killed or preempted job, so a
resubmitted job of the same fingerprint *and* the same stage source resumes from it; it is
removed once the artifact is installed. The checkpoint interval is an execution setting like
the sbatch resources: it is passed on the command line (``--checkpoint-every``), not in the
stage config, so it never reaches a fingerprint (a checkpointed run is bitwise identical to an
uninterrupted one; tests/stages/test_resume.py).

The runner hands the directory, interval and number kept to the stage in its ``JobContext``
(``stages/common/job.py``; every process of a multi-process launch runs the runner and builds its
own); the stage reports the step it resumed from back in ``context.resumed_step``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

JOB_FILE = "job.json"  # whose checkpoints these are: fingerprint and stage code digest
MIN_KEEP = 2  # a job killed mid-save still has the previous complete checkpoint


def checkpoint_dir(output: Path) -> Path:
    """The persistent checkpoint directory of the job whose artifact is ``output``."""
    return output.with_name(f".{output.name}.checkpoints")


def _owner(directory: Path) -> dict[str, Any] | None:
    try:
        return json.loads((directory / JOB_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


@contextmanager
def checkpointing(
    output: Path, job_fingerprint: str, stage_code: str, every: int, keep: int
) -> Iterator[Path | None]:
    """The job's checkpoint directory while the stage runs (or None: it does not checkpoint).

    Checkpoints left by another version of the stage's code are discarded (with a log line):
    resuming them would mix two versions of the training loop in one artifact. The directory
    is made only when the job checkpoints (``every > 0``) or one is there to resume from.
    """
    if every < 0:
        raise ValueError(f"--checkpoint-every {every}: expected 0 (off) or a positive step count")
    if keep < MIN_KEEP:
        raise ValueError(
            f"--checkpoint-keep {keep}: keep at least {MIN_KEEP} checkpoints, so that a job "
            "killed while saving one can resume from the one before"
        )
    directory = checkpoint_dir(output)
    owner = {"fingerprint": job_fingerprint, "code_digest": stage_code}
    if directory.exists() and _owner(directory) != owner:
        print(f"resume: discarding {directory}: its checkpoints are of other code or another job")
        shutil.rmtree(directory)
    if every == 0 and not directory.exists():
        yield None
        return
    directory.mkdir(parents=True, exist_ok=True)
    (directory / JOB_FILE).write_text(json.dumps(owner, sort_keys=True), encoding="utf-8")
    yield directory
