"""The paper's "Person X" prompts, and parsing a sampled answer's score."""

from __future__ import annotations

import re
from typing import Any

from evals.worldvaluesbench.data import Item

_SCORE = re.compile(r'"answer as a score"\s*:\s*"?\s*(-?\d+)')
_PLAIN_INT = re.compile(r"\s*(-?\d+)\s*")


def user_prompt(item: Item, explain: bool) -> str:
    """The paper's "Person X" prompt; ``explain`` asks for its JSON (explanation + score),
    else for the score alone (what option log-likelihoods can score)."""
    lines = ["Person X provided the following demographic information in an interview:"]
    for number, (question, answer) in enumerate(item.demographics, 1):
        lines += [f"{number}. Question: {question}", f" Answer: {answer}"]
    lines.append("")
    ask = "and why?" if explain else "?"
    lines.append(f"What would Person X answer to the following question{' ' if explain else ''}"
                 f"{ask}")  # fmt: skip
    lines.append(f"Question: {item.question}")
    lines.append("")
    if explain:
        lines += [
            "Your output should be in the following format:",
            "{",
            '  "thoughtful explanation": "... upto 30 words '
            '(keep their demographics in mind) ...",',
            '  "answer as a score": "... score ..."',
            "}",
        ]
    else:
        lo, hi = item.scale
        lines.append(f"Answer with a single score from {lo} to {hi}.")
    return "\n".join(lines)


def render(tokenizer: Any, user: str) -> tuple[str, bool]:
    """(prompt, chat?): the tokenizer's chat template when it has one, else the plain text
    (a pretrained-only checkpoint has none); the rendered prompt is saved either way."""
    from evals import lmeval

    if getattr(tokenizer, "chat_template", None):
        return lmeval.render_chat(tokenizer, [{"role": "user", "content": user}]), True
    return user + "\n\n", False


def parse_score(text: str, scale: list[int] | tuple[int, int]) -> int | None:
    """The score of a response: the ``"answer as a score"`` field, or a response that is only
    an integer (upstream's SCORE column); None when absent or off the scale."""
    match = _SCORE.search(text) or _PLAIN_INT.fullmatch(text)
    if not match:
        return None
    value = int(match.group(1))
    return value if scale[0] <= value <= scale[1] else None
