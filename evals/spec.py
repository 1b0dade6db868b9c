"""Task specs with OLMES ids (``task:format::regime``) and their content hash.

A :class:`TaskSpec` is what the registry pins; :func:`resolve` adds what only the data can say
(the dataset digest and size, the few-shot file digest, the sampled instances) and
:func:`spec_hash` hashes that resolved form as canonical JSON. The hash is written into every
result, so two numbers with the same hash were computed on the same instances, with the same
prompts, shots and normalizations.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evals import sources
from reprolm.canonical import canonical_json
from reprolm.hashing import hash_bytes

FORMATS = ("rc", "mc", "cot", "gen")  # an id may also have no format: "ifeval::tulu"


@dataclass(frozen=True)
class FewShotSet:
    """A curated few-shot set: the first ``n`` rows of a versioned bundled file, in file order;
    ``file=""``: the first ``n`` rows per group of the dataset's own few-shot split (MMLU dev)."""

    file: str
    n: int
    source: str


@dataclass(frozen=True)
class TaskSpec:
    """Everything that decides an evaluation number, except the model."""

    task_id: str
    dataset: str  # upstream name, e.g. "allenai/ai2_arc:ARC-Easy" (documentation + identity)
    split: str
    fewshot: FewShotSet | None  # None: zero-shot (IFEval)
    prompt_format: str  # a renderer name in evals.formats / gsm8k
    normalizations: tuple[str, ...]
    primary_metric: str
    version: int
    dataset_digest: str | None = None  # pinned blake3 of the data file; None = record only
    sample_threshold: int = 1500
    sample_size: int = 1000
    sample_seed: int = 1234
    uncond_context: str | None = None  # PMI: log P(ans | ctx) - log P(ans | uncond_context)

    @property
    def task(self) -> str:
        return parse_id(self.task_id)[0]

    @property
    def format(self) -> str:
        return parse_id(self.task_id)[1]

    @property
    def regime(self) -> str:
        return parse_id(self.task_id)[2]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples become lists)."""
        out = dataclasses.asdict(self)
        out["normalizations"] = list(self.normalizations)
        return out


def parse_id(task_id: str) -> tuple[str, str, str]:
    """``"arc_easy:rc::olmes"`` -> ``("arc_easy", "rc", "olmes")``; ``"ifeval::tulu"`` ->
    ``("ifeval", "", "tulu")`` (a task with a single format has none in its id)."""
    head, sep, regime = task_id.partition("::")
    task, colon, fmt = head.partition(":")
    if not sep or not task or (colon and fmt not in FORMATS) or not regime:
        raise ValueError(
            f"task id {task_id!r} is not of the form task:format::regime "
            f"(format one of {FORMATS}) or task::regime, e.g. arc_easy:rc::olmes"
        )
    return task, fmt, regime


def resolve(spec: TaskSpec, data: Path, n_rows: int) -> dict[str, Any]:
    """The spec plus what the data decides: digests, source size and sampled indices."""
    actual = sources.digest(data)
    if spec.dataset_digest is not None and actual != spec.dataset_digest:
        raise ValueError(
            f"{data}: blake3 {actual} differs from the digest pinned by {spec.task_id} "
            f"({spec.dataset_digest}); use the pinned {spec.dataset} {spec.split} file"
        )
    # file "": the shots come from the dataset itself (MMLU's dev split), in its digest
    fewshot = sources.bundled(spec.fewshot.file) if spec.fewshot and spec.fewshot.file else None
    indices = sources.sample_indices(
        n_rows, threshold=spec.sample_threshold, size=spec.sample_size, seed=spec.sample_seed
    )
    resolved = spec.to_dict()
    resolved.update(
        dataset_digest=actual,
        dataset_rows=n_rows,
        fewshot_digest=sources.digest(fewshot) if fewshot else None,
        instances=indices if len(indices) < n_rows else "all",
    )
    return resolved


def spec_hash(resolved: dict[str, Any]) -> str:
    """blake3 of the resolved spec's canonical JSON."""
    return hash_bytes(canonical_json(resolved).encode("utf-8"))
