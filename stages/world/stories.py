"""Sally-Anne style false-belief stories and simple English sentences."""

from __future__ import annotations

import random
from dataclasses import dataclass

from stages.world.vocab import (
    CONTAINERS,
    INTRANSITIVE,
    OBJECTS,
    PLACES,
    ROOMS,
    SUBJECTS,
    VERBS,
)


@dataclass(frozen=True)
class Story:
    """A story, its question, the right container and three wrong ones."""

    text: str
    question: str
    answer: str
    wrong: tuple[str, ...]

    @property
    def prompt(self) -> str:
        return f"{self.text} {self.question}"


def make_story(rng: random.Random, names: list[str] | tuple[str, ...]) -> Story:
    """Two characters from ``names``; the first looks where they last saw the object.

    Every run of words without a character name is shorter than 8 words, so a story whose
    characters never occur in training shares no 8-gram with training text.
    """
    a, b = rng.sample(names, 2)
    obj, room = rng.choice(OBJECTS), rng.choice(ROOMS)
    first, moved, *others = rng.sample(CONTAINERS, 4)
    sees = rng.random() < 0.5
    lines = [f"{a} and {b} are in the {room}.", f"{a} puts the {obj} in the {first}."]
    if sees:
        lines.append(f"{b} moves the {obj} to the {moved} while {a} is watching.")
    else:
        lines += [
            f"{a} leaves the {room}.",
            f"{b} moves the {obj} to the {moved}.",
            f"{a} comes back.",
        ]
    answer = moved if sees else first
    wrong = tuple(f"the {c}" for c in [first if sees else moved, *others])
    return Story(" ".join(lines), f"Where will {a} look for the {obj}?", f"the {answer}", wrong)


def story_ending(story: Story) -> str:
    """The narrative answer sentence, e.g. "Ann will look for the ball in the box."."""
    who_obj = story.question.removeprefix("Where will ").removesuffix("?")
    who, _, obj = who_obj.partition(" look for ")
    return f"{who} will look for {obj} in {story.answer}."


def sentence(rng: random.Random) -> str:
    """One simple English sentence."""
    subject, place = rng.choice(SUBJECTS), rng.choice(PLACES)
    if rng.random() < 0.6:
        verb, obj = rng.choice(VERBS)
        return f"{subject} {verb} {obj} {place}."
    return f"{subject} {rng.choice(INTRANSITIVE)} {place}."
