"""Held-out eval sets and the instances planted into training for decontamination to find."""

from __future__ import annotations

import random

from stages.world.arithmetic import distractors, eval_problem, qa_text
from stages.world.facts import Fact
from stages.world.stories import make_story
from stages.world.vocab import EVAL_STORY_NAMES

# Task order is fixed: it decides which task each planted instance comes from.
TASKS = ("arith_gen", "arith_mc", "facts_mc", "tom_mc")
TASK_KIND = {"arith_gen": "arithmetic", "arith_mc": "arithmetic", "facts_mc": "fact",
             "tom_mc": "story"}  # fmt: skip


def _mc(rng: random.Random, uid: str, question: str, right: str, wrong: list[str]) -> dict:
    choices = [right, *wrong]
    rng.shuffle(choices)
    return {"id": uid, "question": question, "choices": choices, "label": choices.index(right)}


def eval_sets(
    rng: random.Random,
    sizes: dict[str, int],
    pairs: list[tuple[int, int]],
    facts: list[Fact],
) -> dict[str, list[dict]]:
    """The four eval sets from held-out operand ``pairs`` and held-out ``facts``."""
    n_gen = sizes["arith_gen"]
    sets: dict[str, list[dict]] = {"arith_gen": [], "arith_mc": [], "facts_mc": [], "tom_mc": []}
    for i, pair in enumerate(pairs[:n_gen]):
        p = eval_problem(rng, pair)
        sets["arith_gen"].append({"id": f"arith_gen-{i:04d}", "question": p.question,
                                  "answer": str(p.answer)})  # fmt: skip
    for i, pair in enumerate(pairs[n_gen:]):
        p = eval_problem(rng, pair)
        wrong = [str(n) for n in distractors(rng, p)]
        sets["arith_mc"].append(_mc(rng, f"arith_mc-{i:04d}", p.question, str(p.answer), wrong))
    for i, f in enumerate(facts):
        sets["facts_mc"].append(_mc(rng, f"facts_mc-{i:04d}", f.question, f.value,
                                    f.wrong_values(rng, 3)))  # fmt: skip
    for i in range(sizes["tom_mc"]):
        story = make_story(rng, EVAL_STORY_NAMES)
        sets["tom_mc"].append(_mc(rng, f"tom_mc-{i:04d}", story.prompt, story.answer,
                                  list(story.wrong)))  # fmt: skip
    return sets


def eval_index() -> dict[str, dict]:
    """eval/index.json: file, type, the text fields decontamination checks, verifier."""
    index = {"arith_gen": {"file": "eval/arith_gen.jsonl", "type": "generate",
                           "text_fields": ["question"], "verifier": "numeric_answer"}}  # fmt: skip
    for task in TASKS[1:]:
        index[task] = {"file": f"eval/{task}.jsonl", "type": "multiple_choice",
                       "text_fields": ["question"]}  # fmt: skip
    return index


def answer_text(instance: dict) -> str:
    """The gold answer string of a generative or multiple-choice instance."""
    return instance["answer"] if "answer" in instance else instance["choices"][instance["label"]]


def plant(
    rng: random.Random, sets: dict[str, list[dict]], count: int
) -> tuple[list[tuple[str, dict]], list[dict], list[dict]]:
    """Pick ``count`` instances round-robin over TASKS; return them with their verbatim
    pretraining docs and SFT conversations."""
    total = sum(len(rows) for rows in sets.values())
    if count > total:
        raise ValueError(f"world: planted={count} exceeds the {total} eval instances")
    remaining = {task: list(sets[task]) for task in TASKS}
    picked: list[tuple[str, dict]] = []
    tasks = [t for t in TASKS if remaining[t]]
    while len(picked) < count:
        task = tasks[len(picked) % len(tasks)]
        if not remaining[task]:
            tasks.remove(task)
            continue
        picked.append((task, remaining[task].pop(rng.randrange(len(remaining[task])))))
    docs, convs = [], []
    for task, inst in picked:
        kind, answer = TASK_KIND[task], answer_text(inst)
        docs.append({"kind": kind, "text": qa_text(inst["question"], answer)})
        messages = [
            {"role": "user", "content": inst["question"]},
            {"role": "assistant", "content": answer},
        ]
        convs.append({"kind": kind, "messages": messages})
    return picked, docs, convs
