"""IFEval instruction checkers: one class per instruction id, in a registry keyed by that id.

Re-derived from the definitions of Google's IFEval (Zhou et al., 2023). A checker is built from
an item's kwargs (``None`` values dropped) and ``check(response) -> bool`` says whether the
response follows the instruction. Relations are "less than" (``<``) and "at least" (``>=``).
"""

from __future__ import annotations

from typing import Any

# The instruction modules register their checkers on import (in this order).
from evals.ifeval import lexical, structure  # noqa: F401
from evals.ifeval.checker import CHECKERS, RELATIONS, Checker, register

__all__ = ["CHECKERS", "RELATIONS", "Checker", "build", "register"]


def build(instruction_id: str, kwargs: dict[str, Any] | None) -> Checker:
    """The checker for ``instruction_id`` built from an item's kwargs (``None`` values dropped)."""
    if instruction_id not in CHECKERS:
        known = ", ".join(sorted(CHECKERS))
        raise ValueError(f"unknown IFEval instruction id {instruction_id!r}; known: {known}")
    clean = {k: v for k, v in (kwargs or {}).items() if v is not None}
    try:
        return CHECKERS[instruction_id](**clean)
    except TypeError as error:
        raise ValueError(f"{instruction_id}: bad kwargs {sorted(clean)} ({error})") from None
