"""Metrics: the model's distribution per row, W1 against the humans per question and group."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from evals import distributions as dist
from evals.worldvaluesbench.prompts import parse_score


def row_distribution(row: dict) -> list[float] | None:
    """The model's distribution over the row's scale: softmax of the option log-likelihoods, or
    the histogram of the parseable sampled answers (None when none parses)."""
    lo, hi = row["scale"]
    if "choices" in row:
        return dist.softmax([c["loglik"] for c in row["choices"]])
    scores = [s for s in (parse_score(t, row["scale"]) for t in row["samples"]) if s is not None]
    return dist.histogram(scores, range(lo, hi + 1)) if scores else None


def distance(rows: list[dict], models: list[list[float] | None]) -> float:
    """W1 between the mixture of the rows' model distributions and their human answers on
    [0, 1]; 1.0 (the largest possible) when no row has a model distribution."""
    lo, hi = rows[0]["scale"]
    known = [m for m in models if m is not None]
    if not known:
        return 1.0
    positions = dist.scale_positions(hi - lo + 1)
    human = dist.histogram([r["human"] for r in rows], range(lo, hi + 1))
    return dist.wasserstein1(positions, positions, dist.mixture(known), human)


def breakdown(rows: list[dict]) -> dict[str, dict[str, float]]:
    """W1 per question (its rows pooled) and per ``"<question> | <group>"``."""
    by_question: dict[str, list] = defaultdict(list)
    by_group: dict[str, list] = defaultdict(list)
    for row in rows:
        entry = (row, row_distribution(row))
        by_question[row["question_id"]].append(entry)
        by_group[f"{row['question_id']} | {row['group']}"].append(entry)

    def w1(entries: list) -> float:
        return distance([r for r, _ in entries], [m for _, m in entries])

    return {
        "questions": {q: w1(e) for q, e in sorted(by_question.items())},
        "groups": {g: w1(e) for g, e in sorted(by_group.items())},
    }


def metrics(rows: list[dict], spec: dict[str, Any]) -> dict[str, float]:
    """Headline share of questions with W1 < threshold; the same per (question, group); mean
    W1s; and the share of sampled answers that did not parse (0 for option probabilities)."""
    if not rows:
        raise ValueError("no predictions to score")
    parts = breakdown(rows)
    threshold = spec["threshold"]
    questions, groups = list(parts["questions"].values()), list(parts["groups"].values())
    samples = [t for r in rows for t in r.get("samples", [])]
    invalid = [parse_score(t, r["scale"]) is None for r in rows for t in r.get("samples", [])]
    return {
        "questions_below_threshold": sum(d < threshold for d in questions) / len(questions),
        "groups_below_threshold": sum(d < threshold for d in groups) / len(groups),
        "mean_w1": math.fsum(questions) / len(questions),
        "mean_group_w1": math.fsum(groups) / len(groups),
        "invalid": sum(invalid) / len(samples) if samples else 0.0,
    }
