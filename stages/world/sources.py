"""Training sources: pretraining docs, SFT conversations, preference pairs, RLVR prompts.

Every question asked here comes from the *training* side of the held-out splits (operand
pairs, facts); the eval sets own the rest.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from stages.world.arithmetic import Problem, distractors, prose, qa_text, worked
from stages.world.facts import Fact, bio
from stages.world.stories import make_story, sentence, story_ending

ARITH_PROMPTS = ("What is {e}?", "Calculate {e}.", "How much is {e}?", "Please compute {e}.")
# Instruction data mixes prompt templates (as FLAN-style collections in Tulu 3's mix do): half the
# user turns use the QA template the pretraining documents use, half the bare instruction.
QA_TEMPLATE_SHARE = 0.5


@dataclass(frozen=True)
class Pools:
    """What training text may draw on."""

    people: list[list[Fact]]
    facts: list[Fact]  # askable facts (not held out)
    problems: list[Problem]  # problems over training operand pairs
    names: list[str]  # story characters (the world's people)


def _user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def _instruction(rng: random.Random, text: str) -> str:
    """A user turn: the bare instruction or the same one in the QA template."""
    return f"Question: {text}\nAnswer:" if rng.random() < QA_TEMPLATE_SHARE else text


def _assistant(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def pretrain_docs(rng: random.Random, cfg: dict, pools: Pools) -> list[dict]:
    """Fact, arithmetic, story and sentence documents ({"kind", "text"}), grouped by kind."""
    docs = [{"kind": "fact", "text": bio(rng, person)} for person in pools.people]
    for _ in range(cfg["fact_docs"] - len(pools.people)):
        if rng.random() < 0.3:  # QA about askable facts teaches the format facts_mc uses
            facts = rng.sample(pools.facts, rng.randint(2, 4))
            text = "\n\n".join(qa_text(f.question, f.value) for f in facts)
        else:
            text = bio(rng, rng.choice(pools.people), rng.randint(2, 4))
        docs.append({"kind": "fact", "text": text})
    for _ in range(cfg["arithmetic_docs"]):
        problems = [rng.choice(pools.problems) for _ in range(rng.randint(2, 6))]
        if rng.random() < 0.6:
            text = "\n\n".join(qa_text(p.question, str(p.answer)) for p in problems)
        else:
            text = " ".join(prose(rng, p) for p in problems)
        docs.append({"kind": "arithmetic", "text": text})
    for _ in range(cfg["stories"]):
        story = make_story(rng, pools.names)
        if rng.random() < 0.5:
            text = f"{story.prompt} {story_ending(story)}"
        else:
            text = qa_text(story.prompt, story.answer)
        docs.append({"kind": "story", "text": text})
    for _ in range(cfg["sentence_docs"]):
        text = " ".join(sentence(rng) for _ in range(rng.randint(2, 5)))
        docs.append({"kind": "sentence", "text": text})
    return docs


def constrained(rng: random.Random, kind: str, fact: Fact) -> tuple[str, str, str, str]:
    """A format-constrained fact question: (prompt, compliant, violating, ground_truth)."""
    if kind == "lowercase":
        prompt = f"{fact.ask(rng)} Answer in lowercase letters only."
        return prompt, fact.sentence.lower(), fact.sentence, ""
    limit = rng.randint(1, 5)
    unit = "word" if limit == 1 else "words"
    prompt = f"{fact.ask(rng)} Answer in at most {limit} {unit}."
    short = fact.sentence if len(fact.sentence.split()) <= limit else fact.value
    long = f"{fact.sentence} That is everything I know about {fact.name} and {fact.value}."
    return prompt, short, long, str(limit)


def _arith_prompt(rng: random.Random, p: Problem) -> str:
    return rng.choice(ARITH_PROMPTS).format(e=p.expression)


def sft_conversations(rng: random.Random, n: int, pools: Pools) -> list[dict]:
    """``n`` user/assistant conversations ({"kind", "messages"})."""
    kinds = ("arithmetic", "fact", "story", "lowercase", "max_words")
    rows = []
    for kind in rng.choices(kinds, weights=(4, 2, 2, 1, 1), k=n):
        if kind == "arithmetic":
            p = rng.choice(pools.problems)
            user, reply = _arith_prompt(rng, p), worked(p)
        elif kind == "fact":
            f = rng.choice(pools.facts)
            user, reply = f.ask(rng), f.sentence
        elif kind == "story":
            story = make_story(rng, pools.names)
            user, reply = story.prompt, story_ending(story)
        else:
            user, reply, _, _ = constrained(rng, kind, rng.choice(pools.facts))
        user = _instruction(rng, user)
        rows.append({"kind": kind, "messages": _user(user) + _assistant(reply)})
    return rows


def preference_pairs(rng: random.Random, n: int, pools: Pools) -> list[dict]:
    """``n`` pairs: chosen is correct / follows the constraint, rejected is not / does not."""
    kinds = ("arithmetic", "fact", "lowercase", "max_words")
    rows = []
    for kind in rng.choices(kinds, weights=(2, 1, 1, 1), k=n):
        if kind == "arithmetic":
            p = rng.choice(pools.problems)
            wrong = distractors(rng, p, 1)[0]
            user, good = _arith_prompt(rng, p), worked(p)
            bad = f"The answer is {wrong}."
        elif kind == "fact":
            f = rng.choice(pools.facts)
            user, good = f.ask(rng), f.sentence
            bad = f.attribute.answer.format(name=f.name, value=f.wrong_values(rng, 1)[0])
        else:
            user, good, bad, _ = constrained(rng, kind, rng.choice(pools.facts))
        user = _instruction(rng, user)
        rows.append(
            {"kind": kind, "prompt": _user(user), "chosen": _assistant(good),
             "rejected": _assistant(bad)}
        )  # fmt: skip
    return rows


def rlvr_prompts(rng: random.Random, n: int, pools: Pools) -> list[dict]:
    """``n`` prompts, each naming a registry verifier and its ground truth."""
    kinds = ("arithmetic", "lowercase", "max_words")
    rows = []
    for kind in rng.choices(kinds, weights=(2, 1, 1), k=n):
        if kind == "arithmetic":
            p = rng.choice(pools.problems)
            user, verifier, truth = _arith_prompt(rng, p), "numeric_answer", str(p.answer)
        else:
            user, _, _, truth = constrained(rng, kind, rng.choice(pools.facts))
            verifier = kind
        user = _instruction(rng, user)
        rows.append(
            {"kind": kind, "prompt": _user(user), "verifier": verifier, "ground_truth": truth}
        )
    return rows
