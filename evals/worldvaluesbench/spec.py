"""The WorldValuesBench specs, and a spec resolved against the files it read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from evals.spec import TaskSpec


@dataclass(frozen=True)
class WorldValuesSpec(TaskSpec):
    """A WorldValuesBench spec: which demographic columns the prompt lists, the W1 threshold,
    and (``n_samples`` > 0) the sampled-generations variant's settings."""

    demographics: tuple[str, ...] = ("B_COUNTRY", "H_URBRURAL", "Q275")
    threshold: float = 0.2
    n_samples: int = 0  # 0: distribution from option log-likelihoods
    temperature: float = 1.0
    max_gen_toks: int = 64

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["demographics"] = list(self.demographics)
        return out


def _spec(fmt: str, n_samples: int, version: int = 1) -> WorldValuesSpec:
    return WorldValuesSpec(
        task_id=f"worldvaluesbench{':' + fmt if fmt else ''}::probe",
        dataset="Demon702/WorldValuesBench:probe",
        split="probe",
        fewshot=None,
        prompt_format="wvb_person_x_" + ("explain_and_score" if n_samples else "score"),
        normalizations=("scale_position_0_1", "sampled" if n_samples else "option_softmax"),
        primary_metric="questions_below_threshold",
        version=version,
        sample_threshold=10**9,  # never subsample: the probe set is stratified by group
        n_samples=n_samples,
    )


SPECS = [_spec("", 0), _spec("cot", 5)]


def resolve(spec: WorldValuesSpec, digests: dict[str, str], n_rows: int) -> dict[str, Any]:
    """The spec + the digest of the files read (their sorted name/blake3 pairs) + row count."""
    from reprolm.hashing import hash_bytes

    actual = hash_bytes("".join(f"{k}\0{v}\n" for k, v in sorted(digests.items())).encode())
    if spec.dataset_digest is not None and actual != spec.dataset_digest:
        raise ValueError(
            f"WorldValuesBench files digest {actual} differs from the one pinned by "
            f"{spec.task_id} ({spec.dataset_digest})"
        )
    return {
        **spec.to_dict(),
        "dataset_digest": actual,
        "dataset_files": digests,
        "dataset_rows": n_rows,
        "fewshot_digest": None,
        "instances": "all",
    }
