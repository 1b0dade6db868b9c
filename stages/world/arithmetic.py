"""Small-operand addition/subtraction: problems, held-out split and the text formats."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """``a op b`` with a non-negative result."""

    a: int
    op: str  # "+" or "-"
    b: int

    @property
    def answer(self) -> int:
        return self.a + self.b if self.op == "+" else self.a - self.b

    @property
    def expression(self) -> str:
        return f"{self.a} {self.op} {self.b}"

    @property
    def question(self) -> str:
        """The exact question text of the eval sets and of training QA pairs."""
        return f"What is {self.expression}?"


def qa_text(question: str, answer: str) -> str:
    """The QA format shared by pretraining docs and the eval prompt."""
    return f"Question: {question}\nAnswer: {answer}"


def pair_problems(a: int, b: int) -> list[Problem]:
    """Every problem over the ordered operand pair (a, b)."""
    return [Problem(a, "+", b)] + ([Problem(a, "-", b)] if a >= b else [])


def split_pairs(
    rng: random.Random, operand_max: int, heldout: int
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Split ordered operand pairs into (held-out, training).

    Held out by pair, not by problem: decontamination drops '+' and '-' when it splits on
    non-alphanumerics, so "What is 7 + 5?" and "What is 7 - 5?" are the same word n-gram.
    """
    pairs = [(a, b) for a in range(operand_max + 1) for b in range(operand_max + 1)]
    if heldout > len(pairs) // 2:
        raise ValueError(
            f"world: eval_size.arith_gen + eval_size.arith_mc = {heldout} held-out operand pairs, "
            f"but operand_max={operand_max} gives only {len(pairs)} pairs and at least half must "
            "stay for training; raise operand_max or lower the arithmetic eval sizes"
        )
    rng.shuffle(pairs)
    return pairs[:heldout], sorted(pairs[heldout:])


def eval_problem(rng: random.Random, pair: tuple[int, int]) -> Problem:
    """One problem for a held-out pair (subtraction only where the result is non-negative)."""
    return rng.choice(pair_problems(*pair))


def prose(rng: random.Random, p: Problem) -> str:
    """A worked example in words."""
    if p.op == "+":
        templates = (
            "{a} plus {b} is {c}.",
            "{a} + {b} = {c}",
            "If you add {b} to {a}, you get {c}.",
            "{a} and {b} make {c}.",
        )
    else:
        templates = (
            "{a} minus {b} is {c}.",
            "{a} - {b} = {c}",
            "If you take {b} away from {a}, {c} is left.",
            "{a} take away {b} leaves {c}.",
        )
    return rng.choice(templates).format(a=p.a, b=p.b, c=p.answer)


def worked(p: Problem) -> str:
    """The assistant's answer in SFT and preference data.

    Direct rather than restating the problem first: a ~1M-parameter model miscopies operands
    when asked to restate them, which made SFT score below the base model on held-out sums.
    """
    return f"The answer is {p.answer}."


def distractors(rng: random.Random, p: Problem, k: int = 3) -> list[int]:
    """k distinct wrong non-negative answers close to the right one."""
    c = p.answer
    other = p.a - p.b if p.op == "+" else p.a + p.b
    pool = sorted({c - 2, c - 1, c + 1, c + 2, c + 10, c - 10, other} - {c})
    pool = [n for n in pool if n >= 0]
    return rng.sample(pool, k)
