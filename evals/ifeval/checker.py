"""The IFEval checker base class, its registry keyed by instruction id, and relations.

Re-derived from the definitions of Google's IFEval (Zhou et al., 2023). A checker is built from
an item's kwargs (``None`` values dropped) and ``check(response) -> bool`` says whether the
response follows the instruction. Relations are "less than" (``<``) and "at least" (``>=``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

RELATIONS: dict[str, Callable[[int, int], bool]] = {
    "less than": lambda value, bound: value < bound,
    "at least": lambda value, bound: value >= bound,
}


def _relation(name: str) -> Callable[[int, int], bool]:
    if name not in RELATIONS:
        raise ValueError(f"relation {name!r} is not one of {sorted(RELATIONS)}")
    return RELATIONS[name]


class Checker:
    """Base class: subclasses set ``instruction_id`` and implement ``check``."""

    instruction_id: ClassVar[str]

    def __init__(self, **kwargs: Any) -> None:
        if kwargs:
            raise ValueError(f"{self.instruction_id}: unexpected kwargs {sorted(kwargs)}")

    def check(self, response: str) -> bool:
        raise NotImplementedError


CHECKERS: dict[str, type[Checker]] = {}


def register(cls: type[Checker]) -> type[Checker]:
    if cls.instruction_id in CHECKERS:
        raise ValueError(f"instruction id {cls.instruction_id!r} is registered twice")
    CHECKERS[cls.instruction_id] = cls
    return cls
