"""OLMES prompt formats for ARC-style multiple-choice items: cloze ``rc`` and lettered ``mc``.

``rc``  ``Question: <q>\\nAnswer:`` scored on each answer text (`` <text>``).
``mc``  ``Question: <q>\\n A. <text>\\n B. <text>\\n...Answer:`` scored on the letter (`` A``).
Few-shot examples precede the query, each followed by its gold continuation and a blank line,
exactly the layout lm-eval builds for the same task (checked by a test against plain lm-eval).

:func:`multiturn` is the few-shot chat layout of the generative families (GSM8K, MATH, PopQA):
each shot a user / assistant turn pair, the query the last user turn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
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
    group: str = ""  # what a macro average groups by (MMLU's subject); "" for none


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


def head_query(head: str, item: Item, fmt: str) -> str:
    """``head`` then ``Answer:`` (rc), or then the item's lettered choices and ``Answer:`` (mc)."""
    if fmt == "rc":
        return f"{head}\nAnswer:"
    if fmt == "mc":
        lines = "".join(f" {LETTERS[i]}. {text}\n" for i, text in enumerate(item.choices))
        return f"{head}\n{lines}Answer:"
    raise ValueError(f"unknown multiple-choice format {fmt!r} (rc or mc)")


def query(item: Item, fmt: str) -> str:
    """The prompt of one item without its answer."""
    return head_query(f"Question: {item.question}", item, fmt)


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


def multiturn(shots: Iterable[tuple[str, str]], query: str) -> list[dict[str, str]]:
    """Chat messages: each shot's (user, assistant) turns, then ``query`` as the last user turn."""
    messages = []
    for user, assistant in shots:
        messages.append({"role": "user", "content": user})
        messages.append({"role": "assistant", "content": assistant})
    messages.append({"role": "user", "content": query})
    return messages
