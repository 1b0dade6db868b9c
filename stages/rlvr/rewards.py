"""The RLVR reward: each completion is scored by the verifier its dataset row names."""

from __future__ import annotations

from typing import Any

from evals.verifiers import get_verifier


def completion_text(completion: Any) -> str:
    """The text of a completion: a plain string, or the content of conversational messages."""
    if isinstance(completion, str):
        return completion
    return "".join(message.get("content", "") for message in completion)


def verifiable_reward(
    completions: list[Any], verifier: list[str], ground_truth: list[str], **_: Any
) -> list[float]:
    """GRPO reward function; ``verifier`` and ``ground_truth`` arrive as dataset columns."""
    return [
        float(get_verifier(name)(completion_text(completion), truth))
        for completion, name, truth in zip(completions, verifier, ground_truth, strict=True)
    ]
