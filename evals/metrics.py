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


def group_means(pairs: Iterable[tuple[str, float]]) -> dict[str, float]:
    """The mean value per group of ``(group, value)`` pairs, groups in sorted order."""
    by_group: dict[str, list[float]] = {}
    for group, value in pairs:
        by_group.setdefault(group, []).append(value)
    return {g: sum(values) / len(values) for g, values in sorted(by_group.items())}


def mc_metrics(rows: Iterable[dict], normalizations: Iterable[str]) -> dict[str, float]:
    """``{"acc_<norm>": mean correctness}`` over the rows.

    Rows that carry a ``group`` (MMLU's subject) are averaged per group first: ``acc_<norm>``
    is then the macro average over groups (OLMES' MMLU score) and ``acc_<norm>_micro`` the
    mean over all rows.
    """
    rows = list(rows)
    if not rows:
        raise ValueError("no predictions to score")
    grouped = all("group" in row for row in rows)
    out = {}
    for norm in normalizations:
        correct = [float(predicted(row, norm) == row["gold"]) for row in rows]
        micro = sum(correct) / len(correct)
        if not grouped:
            out[f"acc_{norm}"] = micro
            continue
        means = list(
            group_means(zip([row["group"] for row in rows], correct, strict=True)).values()
        )
        out[f"acc_{norm}"] = sum(means) / len(means)
        out[f"acc_{norm}_micro"] = micro
    return out
