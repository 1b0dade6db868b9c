"""Verifiers: one registry shared by RLVR rewards and evaluation metrics.

A verifier scores a model response against a ground truth and returns a float in [0, 1]. RLVR
rows and generative eval sets name their verifier, so a reward and the metric it optimizes can
never drift apart (the open-instruct ``ground_truth_utils`` pattern, re-derived here).
"""

from __future__ import annotations

import re
from collections.abc import Callable

Verifier = Callable[[str, str], float]

VERIFIERS: dict[str, Verifier] = {}

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_ANSWER_IS = re.compile(r"answer is\s*:?\s*\$?\s*(-?[\d,]*\.?\d+)", re.IGNORECASE)


def register(name: str) -> Callable[[Verifier], Verifier]:
    """Add a verifier to the registry under ``name`` (names are unique)."""

    def decorate(fn: Verifier) -> Verifier:
        if name in VERIFIERS:
            raise ValueError(f"verifier {name!r} is registered twice")
        VERIFIERS[name] = fn
        return fn

    return decorate


def get_verifier(name: str) -> Verifier:
    """Look up a verifier; the error lists the known names."""
    try:
        return VERIFIERS[name]
    except KeyError:
        known = ", ".join(sorted(VERIFIERS))
        raise KeyError(f"unknown verifier {name!r}; known verifiers: {known}") from None


def normalize_number(text: str) -> str:
    """Canonical string of a number: commas removed, trailing '.0' dropped."""
    text = text.replace(",", "").strip().rstrip(".")
    try:
        value = float(text)
    except ValueError:
        return text
    return str(int(value)) if value == int(value) else repr(value)


def extract_answer(response: str) -> str | None:
    """GSM8K/Tulu 3 extraction: the number after "answer is", else the last number."""
    match = _ANSWER_IS.search(response)
    if match:
        return normalize_number(match.group(1))
    numbers = _NUMBER.findall(response.replace(",", ""))
    return normalize_number(numbers[-1]) if numbers else None


@register("numeric_answer")
def numeric_answer(response: str, ground_truth: str) -> float:
    """1.0 when the extracted number equals the ground truth number."""
    return float(extract_answer(response) == normalize_number(ground_truth))


@register("lowercase")
def lowercase(response: str, ground_truth: str) -> float:
    """1.0 when the response has letters and none of them is upper case (ground truth unused)."""
    stripped = response.strip()
    return float(bool(re.search(r"[a-z]", stripped)) and stripped == stripped.lower())


@register("max_words")
def max_words(response: str, ground_truth: str) -> float:
    """1.0 when the response has between 1 and ``int(ground_truth)`` words."""
    words = response.split()
    return float(0 < len(words) <= int(ground_truth))
