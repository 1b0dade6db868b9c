"""Discrete answer distributions and the Wasserstein-1 distance between them.

Written by hand rather than calling ``scipy.stats.wasserstein_distance`` so that ``reprolm eval
recompute`` needs no scipy and its sums are plain Python floats in a fixed order (bit-for-bit
reproducible across numpy/scipy versions); the tests check it against scipy.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence


def softmax(logits: Sequence[float]) -> list[float]:
    """Probabilities from log-scores (max-shifted, so large negative log-likelihoods are fine)."""
    top = max(logits)
    exps = [math.exp(x - top) for x in logits]
    total = math.fsum(exps)
    return [e / total for e in exps]


def histogram(values: Sequence[int], support: Sequence[int]) -> list[float]:
    """Relative frequency of each support point among ``values`` (values outside are refused)."""
    counts = {point: 0 for point in support}
    for value in values:
        if value not in counts:
            raise ValueError(f"answer {value!r} is outside the scale {list(support)}")
        counts[value] += 1
    total = len(values)
    if total == 0:
        raise ValueError("no answers to build a distribution from")
    return [counts[point] / total for point in support]


def mixture(distributions: Sequence[Sequence[float]]) -> list[float]:
    """The equal-weight mixture (mean) of distributions over the same support."""
    n = len(distributions)
    return [math.fsum(column) / n for column in zip(*distributions, strict=True)]


def scale_positions(k: int) -> list[float]:
    """Positions of a K-option ordinal scale on [0, 1]: option k (1-based) at (k-1)/(K-1)."""
    if k < 2:
        raise ValueError(f"a scale needs at least 2 options, got {k}")
    return [i / (k - 1) for i in range(k)]


def wasserstein1(
    u_values: Sequence[float],
    v_values: Sequence[float],
    u_weights: Sequence[float] | None = None,
    v_weights: Sequence[float] | None = None,
) -> float:
    """1-D Wasserstein-1 (earth mover's) distance between two weighted empirical distributions:
    the integral of |U(x) - V(x)| over x, U and V the cumulative distribution functions (the
    definition ``scipy.stats.wasserstein_distance`` implements)."""
    u_cdf = _cdf(u_values, u_weights)
    v_cdf = _cdf(v_values, v_weights)
    points = sorted(set(u_cdf) | set(v_cdf))
    total, u_acc, v_acc = [], 0.0, 0.0
    for left, right in itertools.pairwise(points):
        u_acc = u_cdf.get(left, u_acc)
        v_acc = v_cdf.get(left, v_acc)
        total.append(abs(u_acc - v_acc) * (right - left))
    return math.fsum(total)


def _cdf(values: Sequence[float], weights: Sequence[float] | None) -> dict[float, float]:
    """``point -> P(X <= point)`` at each distinct value."""
    weights = [1.0] * len(values) if weights is None else list(weights)
    if len(weights) != len(values) or not values:
        raise ValueError("need as many weights as values, and at least one value")
    if any(w < 0 for w in weights) or math.fsum(weights) <= 0:
        raise ValueError("weights must be non-negative with a positive sum")
    mass: dict[float, float] = {}
    for value, weight in zip(values, weights, strict=True):
        mass[float(value)] = mass.get(float(value), 0.0) + weight
    total = math.fsum(weights)
    out, acc = {}, []
    for point in sorted(mass):
        acc.append(mass[point])
        out[point] = math.fsum(acc) / total
    return out
