"""Multiple-choice metrics from saved per-choice log-likelihoods (no model needed).

A prediction row holds, per choice, ``loglik`` (log P(continuation | context)), ``n_tokens``,
``n_chars`` and, for PMI, ``uncond_loglik`` (log P(continuation | "Answer:")). Each
normalization picks the argmax of a per-choice score (first index on ties, as numpy's argmax);
``acc_<norm>`` is the mean of 0/1 correctness. Plain Python floats, fixed order: recomputing
from the same file gives the same bits.
"""

from __future__ import annotations

from collections.abc import Iterable

NORMALIZATIONS = ("raw", "per_token", "per_char", "uncond")


def choice_score(choice: dict, norm: str) -> float:
    """The score of one choice under a normalization."""
    if norm == "raw":
        return choice["loglik"]
    if norm == "per_token":
        return choice["loglik"] / choice["n_tokens"]
    if norm == "per_char":
        return choice["loglik"] / choice["n_chars"]
    if norm == "uncond":
        return choice["loglik"] - choice["uncond_loglik"]
    raise ValueError(f"unknown normalization {norm!r}; known: {', '.join(NORMALIZATIONS)}")


def argmax(values: list[float]) -> int:
    """Index of the largest value; the first one on ties."""
    best = 0
    for index, value in enumerate(values):
        if value > values[best]:
            best = index
    return best


def predicted(row: dict, norm: str) -> int:
    """The choice a normalization picks for one prediction row."""
    return argmax([choice_score(c, norm) for c in row["choices"]])


def mc_metrics(rows: Iterable[dict], normalizations: Iterable[str]) -> dict[str, float]:
    """``{"acc_<norm>": mean correctness}`` over the rows."""
    rows = list(rows)
    if not rows:
        raise ValueError("no predictions to score")
    out = {}
    for norm in normalizations:
        correct = [float(predicted(row, norm) == row["gold"]) for row in rows]
        out[f"acc_{norm}"] = sum(correct) / len(correct)
    return out
