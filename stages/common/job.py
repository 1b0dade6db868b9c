"""What a stage's ``run(config, inputs, output_dir, context)`` receives besides its config.

``inputs`` maps each input name to an ``Input``: the upstream artifact's directory and its
provenance manifest (``Input`` behaves as a path: ``os.fspath``, ``Path(...)``, ``/``).
``context`` is the job's ``JobContext``: how the job runs (process rank and count, where and how
often to save resumable checkpoints, the DeepSpeed config of a multi-process launch), never
what it computes. A stage reads these instead of environment variables, so that nothing but the
recipe and the inputs can change a result, and a stage called by a test gets the same objects.

This module is job code (it is in every stage's code digest) and imports nothing but the
standard library. The runner (``reprolm.runner``) imports it to build the objects: one
definition of the contract on both sides, instead of plain dicts re-wrapped by every stage.
Nothing here computes a payload byte.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MIN_KEEP = 2  # a job killed mid-save still has the previous complete checkpoint
MANIFEST_NAME = "provenance.json"


@dataclass(frozen=True)
class Input:
    """An input artifact: its directory and its provenance manifest ({} when it has none)."""

    path: Path
    manifest: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __truediv__(self, other: str | os.PathLike) -> Path:
        return self.path / other

    def __str__(self) -> str:
        return str(self.path)

    @property
    def stage(self) -> str | None:
        return self.manifest.get("stage")

    @property
    def digest(self) -> str | None:
        return self.manifest.get("digest")

    @classmethod
    def at(cls, path: str | os.PathLike) -> Input:
        """The input at ``path``, with its ``provenance.json`` when there is one."""
        path = Path(path)
        manifest = path / MANIFEST_NAME
        return cls(path, json.loads(manifest.read_text("utf-8")) if manifest.is_file() else {})


def as_inputs(inputs: Mapping[str, Input | str | os.PathLike]) -> dict[str, Input]:
    """Name -> ``Input``; plain paths (tests, hand-built inputs) get their manifests read."""
    return {
        name: value if isinstance(value, Input) else Input.at(value)
        for name, value in inputs.items()
    }


@dataclass
class JobContext:
    """How this job runs; the defaults are a plain single process without checkpoints.

    ``resumed_step`` is the one field a stage sets: the checkpoint step it resumed training
    from (the runner records it in the manifest's ``execution.resumed_from_step``).
    """

    stage: str = ""
    fingerprint: str = ""
    rank: int = 0
    world_size: int = 1
    checkpoint_dir: Path | None = None  # persistent across attempts; None: no checkpointing
    checkpoint_every: int = 0  # steps between checkpoints; 0 saves none (but still resumes)
    checkpoint_keep: int = MIN_KEEP
    deepspeed_config: Path | None = None  # the launcher's generated DeepSpeed JSON
    micro_batch_size: int | None = None  # of a plain DDP launch (None: the per-process batch)
    resumed_step: int | None = None

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes the artifact."""
        return self.rank == 0
