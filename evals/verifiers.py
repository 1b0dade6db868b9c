"""Verifiers: one registry shared by RLVR rewards and evaluation metrics.

A verifier scores a model response against a ground truth and returns a float in [0, 1]. RLVR
rows and generative eval sets name their verifier, so a reward and the metric it optimizes can
never drift apart (the open-instruct ``ground_truth_utils`` pattern, re-derived here).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

# The GSM8K / Tulu 3 answer extraction lives with the evaluation specs (evals), so the
# RLVR reward and every numeric metric share one implementation.
from evals.gsm8k import extract_answer, normalize_number, tulu_gold, tulu_last_number, tulu_match
from evals.ifeval import strict_fraction
from evals.math_answer import flex_match

Verifier = Callable[[str, str], float]

VERIFIERS: dict[str, Verifier] = {}


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


@register("numeric_answer")
def numeric_answer(response: str, ground_truth: str) -> float:
    """1.0 when the number after "answer is" (else the last number) equals the ground truth
    numerically (``gsm8k:cot::answer_is``'s rule; the tiny world's arithmetic rows)."""
    return float(extract_answer(response) == normalize_number(ground_truth))


@register("gsm8k_tulu")
def gsm8k_tulu(response: str, ground_truth: str) -> float:
    """Tulu 3's GSM8K reward, the rule of ``gsm8k:cot::tulu``: the last number (commas between
    digits dropped) equals the ground truth as a string (open-instruct
    ``ground_truth_utils.py``, ``verify_gsm8k_sample`` / ``GSM8KVerifier``). The ground truth is
    cleaned as OLMES cleans the gold, which leaves a plain number as written."""
    return float(tulu_match(response, tulu_last_number(response), tulu_gold(ground_truth)))


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


@register("ifeval")
def ifeval(response: str, ground_truth: str) -> float:
    """Share of IFEval instructions followed, strictly (the evaluation's checker registry).

    ``ground_truth`` is JSON ``{"instruction_id_list": [...], "kwargs": [...]}``.
    """
    try:
        truth = json.loads(ground_truth)
        ids, kwargs = truth["instruction_id_list"], truth["kwargs"]
    except (ValueError, TypeError, KeyError) as error:
        raise ValueError(
            "ifeval ground_truth must be JSON with 'instruction_id_list' and 'kwargs' "
            f"({error!r}): {ground_truth[:80]!r}"
        ) from None
    return strict_fraction(ids, kwargs, response)


@register("math_flex")
def math_flex(response: str, ground_truth: str) -> float:
    r"""Tulu 3's MATH check (``minerva_math::tulu``'s ``exact_match_flex``, open-instruct
    ``MathVerifier``): the last ``\boxed{}``, the Minerva "Final Answer", else the last ``$..$``
    answer (else the response), any of them equivalent to the ground truth (sympy where its
    LaTeX parser runs, else Hendrycks normalization); see :mod:`evals.math_answer`."""
    return float(flex_match(response, ground_truth))
