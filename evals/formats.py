"""OLMES prompt formats for ARC-style multiple-choice items: cloze ``rc`` and lettered ``mc``.

``rc``  ``Question: <q>\\nAnswer:`` scored on each answer text (`` <text>``).
``mc``  ``Question: <q>\\n A. <text>\\n B. <text>\\n...Answer:`` scored on the letter (`` A``).
Few-shot examples precede the query, each followed by its gold continuation and a blank line,
exactly the layout lm-eval builds for the same task (checked by a test against plain lm-eval).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

LETTERS = "ABCDEFGHIJ"
SHOT_DELIMITER = "\n\n"


@dataclass(frozen=True)
class Item:
    """One multiple-choice item in a source-independent form."""

    id: str
    question: str
    choices: tuple[str, ...]
    gold: int
    raw: dict = field(default_factory=dict, compare=False, repr=False)  # the source record


def arc_item(row: dict, where: str = "") -> Item:
    """An ARC record (HF schema: ``question``, ``choices{text,label}``, ``answerKey``)."""
    try:
        labels = list(row["choices"]["label"])
        texts = tuple(row["choices"]["text"])
        gold = labels.index(row["answerKey"])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(
            f"{where}: not an ARC record with question, choices{{text,label}} and an "
            f"answerKey among the labels ({error!r})"
        ) from None
    return Item(id=str(row.get("id", "")), question=row["question"], choices=texts, gold=gold)


def query(item: Item, fmt: str) -> str:
    """The prompt of one item without its answer."""
    if fmt == "rc":
        return f"Question: {item.question}\nAnswer:"
    if fmt == "mc":
        lines = "".join(f" {LETTERS[i]}. {text}\n" for i, text in enumerate(item.choices))
        return f"Question: {item.question}\n{lines}Answer:"
    raise ValueError(f"unknown multiple-choice format {fmt!r} (rc or mc)")


def continuations(item: Item, fmt: str) -> list[str]:
    """What is scored per choice: the answer text (rc) or its letter (mc), after a space."""
    if fmt == "rc":
        return [f" {text}" for text in item.choices]
    return [f" {LETTERS[i]}" for i in range(len(item.choices))]


def context(
    item: Item, shots: list[Item], fmt: str, query_fn: Callable[[Item, str], str] = query
) -> str:
    """Few-shot examples (with their gold answers) followed by the item's query."""
    parts = [query_fn(s, fmt) + continuations(s, fmt)[s.gold] + SHOT_DELIMITER for s in shots]
    return "".join(parts) + query_fn(item, fmt)
