"""People and their facts: statements for pretraining, questions for SFT and eval."""

from __future__ import annotations

import random
from dataclasses import dataclass

from stages.world.vocab import ATTRIBUTES, NAMES, Attribute


@dataclass(frozen=True)
class Fact:
    """One (person, attribute) fact of the world."""

    name: str
    attribute: Attribute
    value: str

    @property
    def question(self) -> str:
        return self.attribute.question.format(name=self.name)

    @property
    def sentence(self) -> str:
        return self.attribute.answer.format(name=self.name, value=self.value)

    def ask(self, rng: random.Random) -> str:
        """The question in the eval phrasing or one of its rephrasings."""
        templates = (self.attribute.question, *self.attribute.rephrasings)
        return rng.choice(templates).format(name=self.name)

    def statement(self, rng: random.Random) -> str:
        return rng.choice(self.attribute.statements).format(name=self.name, value=self.value)

    def wrong_values(self, rng: random.Random, k: int) -> list[str]:
        return rng.sample([v for v in self.attribute.values if v != self.value], k)


def make_people(rng: random.Random, people: int) -> list[list[Fact]]:
    """``people`` persons, each a list of one fact per attribute."""
    if not 2 <= people <= len(NAMES):
        raise ValueError(f"world: people={people} must be between 2 and {len(NAMES)}")
    names = rng.sample(NAMES, people)
    return [[Fact(n, a, rng.choice(a.values)) for a in ATTRIBUTES] for n in names]


def split_facts(
    rng: random.Random, world: list[list[Fact]], heldout: int
) -> tuple[list[Fact], list[Fact]]:
    """Split facts into (held out as facts_mc questions, askable in training).

    Every fact is still *stated* in pretraining; held-out facts are only never *asked*
    about in training, so facts_mc measures recall of pretraining knowledge.
    """
    facts = [f for person in world for f in person]
    if heldout > len(facts) // 2:
        raise ValueError(
            f"world: eval_size.facts_mc={heldout} exceeds half of the {len(facts)} facts "
            f"(people x {len(ATTRIBUTES)} attributes); raise people or lower eval_size.facts_mc"
        )
    order = list(range(len(facts)))
    rng.shuffle(order)
    held = [facts[i] for i in order[:heldout]]
    train = [facts[i] for i in sorted(order[heldout:])]
    return held, train


def bio(rng: random.Random, person: list[Fact], k: int | None = None) -> str:
    """A short paragraph stating k (default: all) of a person's facts in random order."""
    chosen = rng.sample(person, len(person) if k is None else k)
    return " ".join(f.statement(rng) for f in chosen)
