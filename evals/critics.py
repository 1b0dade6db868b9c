"""Critic models that judge a family's generations (δ-RoT's validity critic), as recipe inputs.

A critic is named in the recipe, ``evaluate.critics.<name>: <HF model directory>`` (absolute, or
relative to the repository root). The plan pins the directory's payload digest into the evaluate
job config (``critic_digests``; ``reprolm.evalplan.pin_critics``), so a changed critic changes the
job's fingerprint; the family refuses a critic whose digest differs from the pinned one and
records the digest it used in the result. Nothing else (no environment variable) picks a critic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
# the families that take a critic (config/schema/evaluate.schema.yaml)
NAMES = ("delta_rot", "xstest")


@dataclass(frozen=True)
class Critic:
    """A critic directory and the digest the plan pinned (None: unpinned, a CLI run)."""

    path: Path
    digest: str | None = None
    source: str = "cli"  # where it was named: the recipe key, or "cli"


def resolve(path: str | Path) -> Path:
    """A recipe critic path: absolute, or relative to the repository root."""
    candidate = Path(path)
    return candidate if candidate.is_absolute() else REPO_ROOT / candidate


def from_config(config: Mapping[str, Any]) -> dict[str, Critic]:
    """Name -> ``Critic`` from an evaluate job config ({} when the recipe names none)."""
    digests = config.get("critic_digests") or {}
    return {
        name: Critic(resolve(path), digests.get(name), f"evaluate.critics.{name}")
        for name, path in sorted((config.get("critics") or {}).items())
    }
